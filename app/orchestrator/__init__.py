"""Missions: "tell it what to build". A person asks for an outcome (`/dispatch ask …`, an issue
labelled `dispatch/mission`, or `dispatch ask` on the command line); Claude reads what exists
through read-only tools and answers with one proposal (new issues, existing issues to dispatch,
a mode for each, dependencies); Dispatch validates it, checks it for duplicates and posts it with
a revision hash. Nothing is created or dispatched until a person with write permission says
`/dispatch approve` on the mission issue, and then exactly that revision is carried out.

This room owns the `mission`, `mission_proposal` and `mission_item` tables."""
