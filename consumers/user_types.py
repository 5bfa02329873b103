"""Keep the worker's copy of the Controller's user types fresh (``profiles/types/list``).

The planning agent flags profiles whose ``user_type_id`` the Controller does not list
(``streams.enrich.UserTypeDirectory``). A failed refresh keeps the last good list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from foundation.controller import ControllerClient
from foundation.errors import ParkstreamError
from foundation.worker.app import WorkerApp

log = logging.getLogger(__name__)


UpdateTypes = Callable[[list[dict[str, Any]]], object]


async def refresh(client: ControllerClient, update: UpdateTypes) -> None:
    """Hand the Controller's list to ``update``; nothing when the call fails (the last good
    list is kept)."""
    try:
        reply = await client.list_user_types()
    except ParkstreamError as exc:
        log.warning('user types not refreshed error="%s"', type(exc).__name__)
        return
    listed = reply.body.get("user_types") or []
    update(listed)
    log.info("user types refreshed count=%d", len(listed))


def register(
    worker: WorkerApp, update: UpdateTypes, controller: Callable[[], ControllerClient]
) -> None:
    """Refresh the planning agents' user types every ``PARKSTREAM_USER_TYPES_REFRESH_SECONDS``
    (``update``: ``streams.enrich.UserTypeDirectory.update``)."""

    async def refresh_user_types() -> None:
        await refresh(controller(), update)

    worker.app.timer(interval=worker.settings.user_types_refresh, on_leader=False)(
        refresh_user_types
    )
