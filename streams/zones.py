"""Keep the worker's list of the Controller's zones fresh (``permits/stats``).

The per-zone metrics give a zone a ``zone`` label of its own only when the operator
configured it (the alias table) or the Controller reports it
(``streams.stats.labels.ZoneLabels``), so zone names a vendor makes up cannot take the
label slots. The list is asked for when the worker starts and every
``ZONES_REFRESH_SECONDS``; a failed refresh (the Controller unreachable or refusing, an
answer not shaped as documented) keeps the last good list. The labels refreshed are the
worker's own (``streams.stats.Stats.labels``), handed over by ``register``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from foundation.controller import ControllerClient
from foundation.errors import ParkstreamError
from foundation.worker.app import WorkerApp
from streams.stats.labels import MetricLabels

log = logging.getLogger(__name__)

# A zone the Controller starts reporting is labelled at most this long after.
ZONES_REFRESH_SECONDS = 60.0


async def refresh_zones(client: ControllerClient, labels: MetricLabels) -> bool:
    """Relabel ``labels`` from the Controller's permits/stats (all zones); False when the
    call failed or the answer was not one, the last good list then kept."""
    try:
        reply = await client.permit_stats()
        changed = labels.learn_controller_zones(reply.body)
    except ParkstreamError as exc:
        log.warning('controller zones not refreshed error="%s"', type(exc).__name__)
        return False
    except ValueError as exc:
        log.warning('controller zones not refreshed error="UnexpectedAnswer" reason="%s"', exc)
        return False
    level = logging.INFO if changed else logging.DEBUG
    log.log(level, "controller zones refreshed labelled=%d", labels.zone_labels.reported)
    return True


def register(
    worker: WorkerApp, controller: Callable[[], ControllerClient], labels: MetricLabels
) -> None:
    """Refresh the worker's zone ``labels`` at start and every ``ZONES_REFRESH_SECONDS``."""

    async def first_zones_refresh() -> None:
        await refresh_zones(controller(), labels)

    async def refresh_controller_zones() -> None:
        await refresh_zones(controller(), labels)

    worker.app.task(first_zones_refresh)
    worker.app.timer(interval=ZONES_REFRESH_SECONDS, on_leader=False)(refresh_controller_zones)
