"""The job names and schedules: the one place that knows them.

Areas enqueue by these names (`queue.enqueue(jobs.PROCESS_DELIVERY, ...)`); `registry()` binds
each name to the area function that runs it, importing areas lazily so that areas can import
this module without a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.queue import JobRegistry
    from app.runtime import Runtime

PROCESS_DELIVERY = "deliveries.process"
SWEEP_DELIVERIES = "deliveries.sweep"


def registry(rt: Runtime) -> JobRegistry:
    from app.intake import processing, sweep
    from app.queue import JobRegistry

    reg = JobRegistry()

    async def process_delivery(payload: dict[str, Any]) -> None:
        await processing.process(payload["guid"], rt)

    async def sweep_deliveries() -> None:
        await sweep.run(rt)

    reg.job(PROCESS_DELIVERY, process_delivery)
    reg.schedule(SWEEP_DELIVERIES, rt.settings.delivery_sweep_schedule, sweep_deliveries)
    load_handlers()
    return reg


def load_handlers() -> None:
    """Import every module that registers event handlers on `app.events.router`."""
    import app.installations.handlers  # noqa: F401
