"""The `/dispatch` voice: every text a person writes (issue body, comment, review, review
comment) becomes one generic comment; commands are parsed from it, permission-checked against
GitHub, run through the verb registry, and always answered."""
