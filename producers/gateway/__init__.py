"""The OPS-COM-compatible HTTP gateway: vendors change only their base URL.

Routes (all under the one client code this deployment serves)::

    POST /api/{client}/v1/permits/push|update|delete     -> ParkingSessionEvent (sessions.v1)
    POST /api/{client}/v1/vehicles/push                  -> VehicleEvent        (vehicles.v1)
    POST /api/{client}/v1/profiles/push                  -> UserEvent           (users.v1)
    POST /api/{client}/v1/permits/stats                  \\
    POST /api/{client}/v1/profiles/types/list             |  passed through to the Controller
    POST /api/{client}/v1/violations/send_overdue_to_collections  |  with parkstream's own token,
    POST /api/v1/validate/plate                          /   for vendors granted the endpoint
    GET  /api/{client}/v1/permits/{reference_id}         delivery status (parkstream extension)
    GET  /openapi.json                                   OpenAPI 3 document of all of the above
    GET  /healthz                                        liveness

``/readyz`` and ``/metrics`` (which name every vendor and its volumes) are served on the
operations port ``PARKSTREAM_GATEWAY_OPS_PORT`` only (``create_ops_app``), never here.

A push is validated with the Controller contract (``schemas.controller``) and
answered exactly as the Controller answers it: the documented success body, or
``{"ErrorCode", "ErrorMessage"}`` with the contract's HTTP status. The success
answer is sent only after the broker acknowledged the event (acks=all,
idempotent producer). When the broker cannot take it the answer is ``503`` with
``Retry-After`` and nothing is claimed as accepted (what the gateway does next: ``producer``).
Bodies over ``PARKSTREAM_GATEWAY_MAX_BODY_BYTES`` get ``413``; a request whose headers and
body do not arrive within ``PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS`` gets ``408`` and its
connection is closed (``foundation.web``).

Every vendor may push and ask about its own permits; a pass-through endpoint only when the
operator granted it to that vendor (``PARKSTREAM_VENDOR_GRANTS``, ``VendorGrants``): those
calls act with parkstream's token, and violations/send_overdue_to_collections changes the
Controller's state. An ungranted call gets 9002 and never reaches the Controller.

The vendor's token identifies the vendor and is then dropped: it never enters
Kafka, a log line or an error message. See docs/gateway.md.

One module an idea:

    app           the applications: create_app (parts, routes, middlewares), create_ops_app,
                  serve
    auth          vendor tokens, grants and the client code (Authenticator)
    push          push endpoints -> events, answered after the broker's acknowledgement
    passthrough   pass-through endpoints -> the Controller, with parkstream's token
    status        delivery status, asked of the worker (delivery_status)
    observation   the middleware counting, timing and logging every vendor request
    answers       the gateway's own answers: error envelope, 503, unknown paths
    body          a request body read within the size and time bounds
    producer      the Kafka producer the gateway sends with, and its replacement

Each logs as ``producers.gateway`` (``getLogger(__package__)``), the logger name every line
of the gateway has carried.
"""

from producers.gateway.app import GATEWAY_KEY, Gateway, create_app, create_ops_app, serve
from producers.gateway.status import delivery_status

__all__ = ["GATEWAY_KEY", "Gateway", "create_app", "create_ops_app", "delivery_status", "serve"]
