"""Keep the worker's copy of the Controller's user types fresh (``profiles/types/list``).

The planning agent flags profiles whose ``user_type_id`` the Controller does not list
(``streams.enrich.UserTypeDirectory``). A failed refresh keeps the last good list.
"""

from __future__ import annotations

import logging

from consumers.dispatch import controller
from parkstream.errors import ParkstreamError
from streams.app import app, settings, user_types

log = logging.getLogger(__name__)


@app.timer(interval=settings.user_types_refresh, on_leader=False)  # type: ignore[untyped-decorator]
async def refresh_user_types() -> None:
    try:
        reply = await controller().list_user_types()
    except ParkstreamError as exc:
        log.warning('user types not refreshed error="%s"', type(exc).__name__)
        return
    user_types.update(reply.body.get("user_types") or [])
    log.info("user types refreshed count=%d", len(user_types.names))
