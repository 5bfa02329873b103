"""A parking session's delivery state: what the worker records and the gateway shows.

The one home of the state names. The worker writes them into its ``sessions`` table
(``consumers.dispatch``); ``GET /api/{client}/v1/permits/status/{reference_id}`` shows
them to the vendor (``producers.gateway``), documented in docs/delivery.md and listed in
the OpenAPI document (``producers.openapi``).
"""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    """A session's state. A ``StrEnum``: its values are the strings on the wire and in tables."""

    ACCEPTED = "accepted"  # in Kafka, no outcome yet (the gateway's answer for no record)
    DELIVERED = "delivered"  # the Controller has the permit (its reference id is known)
    DEAD_LETTERED = "dead_lettered"  # refused by the Controller: a dead letter says why
    IN_DOUBT = "in_doubt"  # a push whose answer was lost and that the Controller cannot show
    DELETED = "deleted"  # the permit was deleted on the Controller
