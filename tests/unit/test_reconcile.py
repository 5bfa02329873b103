"""Reconciling an interrupted push against a Controller (issue 11, items 3 and 4): the Controller's
time zone is used, and the push is sent again only on proof the Controller lacks it."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from faust.types import TP

from consumers import dispatch
from consumers.dispatch import Dispatcher
from consumers.journal import Lookup
from consumers.retry import CircuitBreaker
from foundation.controller import ControllerClient
from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from foundation.worker.ownership import Ownership
from schemas.controller import PlatePermit, plate_validation_body

NOW = datetime.now(UTC).replace(microsecond=0)
TORONTO = ZoneInfo("America/Toronto")


@pytest.fixture
def lease():
    return Ownership(1).lease(TP("commands", 0))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(dispatch, "backoff_delay", lambda attempt, retry_after: 0.0)


def dispatcher(client: ControllerClient, **settings) -> Dispatcher:
    """A dispatcher of a worker built from explicit settings, calling ``client``."""
    return Dispatcher(WorkerApp(Settings(**settings)), controller=client)


def controller(monkeypatch, status, body=None, content=None):
    def answer(request):
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body)

    return ControllerClient(
        "http://controller.test", "OC-TOMA", "tok", transport=httpx.MockTransport(answer)
    )


def fields(start, end):
    return {"plate": "PL8RDR", "start_time": start, "end_time": end, "zone": "Lot 4"}


async def test_a_permit_shown_in_the_controllers_local_time_is_found(monkeypatch, lease):
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    shown = PlatePermit("temp", "Lot 4", end.astimezone(TORONTO).replace(tzinfo=None))
    client = controller(monkeypatch, 200, plate_validation_body("PL8RDR", [shown]))
    toronto = dispatcher(client, controller_timezone="America/Toronto")
    verdict, _ = await toronto.look_up_push(fields(start, end), lease)
    assert verdict is Lookup.SHOWN  # not pushed a second time


def test_the_dispatcher_reads_validate_plate_in_the_configured_controller_time_zone():
    # The bug was UTC hard-coded here while PARKSTREAM_CONTROLLER_TIMEZONE was parsed.
    client = controller(None, 200, {})
    assert dispatcher(client, controller_timezone="America/Toronto").controller_timezone == TORONTO


async def test_a_lookup_refused_with_9002_leaves_the_push_in_doubt(monkeypatch, lease):
    client = controller(monkeypatch, 401, {"error": 9002, "message": "Invalid token"})
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    verdict, why = await dispatcher(client).look_up_push(fields(start, end), lease)
    assert verdict is Lookup.UNKNOWN and "9002" in why


async def test_a_lookup_that_keeps_failing_while_the_controller_is_up_leaves_the_push_in_doubt(
    monkeypatch, lease
):
    # Other calls keep the circuit closed (the Controller answers them): no outage to wait out.
    up = dispatcher(controller(monkeypatch, 200, content=b"<html>Down for maintenance</html>"))
    up.breaker = CircuitBreaker(failure_threshold=1000)
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    verdict, why = await up.look_up_push(fields(start, end), lease)
    assert verdict is Lookup.UNKNOWN and str(dispatch.LOOKUP_ATTEMPTS) in why


async def test_an_ended_permit_the_controller_cannot_show_leaves_the_push_in_doubt(
    monkeypatch, lease
):
    client = controller(monkeypatch, 200, plate_validation_body("PL8RDR", []))
    start, end = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    verdict, _ = await dispatcher(client).look_up_push(fields(start, end), lease)
    assert verdict is Lookup.UNKNOWN


async def test_an_active_permit_the_controller_does_not_list_is_absent(monkeypatch, lease):
    client = controller(monkeypatch, 200, plate_validation_body("PL8RDR", []))
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    verdict, _ = await dispatcher(client).look_up_push(fields(start, end), lease)
    assert verdict is Lookup.ABSENT  # the only case that is pushed again
