"""`python -m app.cli …`, as the `dispatch` script."""

from app.cli import main

main()
