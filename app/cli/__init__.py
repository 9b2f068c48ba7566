"""The `dispatch` command: serve, worker, migrate, deliveries (replay, discard), tokens,
customers, sync, doctor, ask (a mission), kill switch, prune, db dump/restore; one module per
group of commands, all added to `main` here.

Configuration errors print one line naming the variable and exit with status 2; no traceback.
Each command imports what it needs inside its function, so `dispatch --help` and a mistyped
command answer at once instead of loading the whole application first.
"""

from __future__ import annotations

import click

from app import __version__
from app.cli import customers, deliveries, doctor, missions, operations, processes, sync, tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Dispatch: run AI coding agents on GitHub issues.

    Settings come from the environment (see the README); with no DATABASE_URL an embedded
    PostgreSQL is started in DISPATCH_DATA_DIR.
    """


for command in (
    processes.serve,
    processes.worker,
    processes.migrate,
    deliveries.deliveries,
    tokens.token,
    customers.customer,
    sync.sync,
    doctor.doctor,
    missions.ask,
    operations.killswitch,
    operations.prune,
    operations.db,
):
    main.add_command(command)
