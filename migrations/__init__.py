"""Piccolo migrations: the only way the schema changes. Files run in the order of their ID."""
