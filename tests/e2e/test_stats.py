"""Per-zone statistics of a running stack: what the Controller applied, counted once, exactly,
kept across a worker restart, and reconciled with the Controller's permits/stats."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from foundation.broker import free_port
from parkstream.stats_report import run_stats
from schemas.avro import codec
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR, VENDOR_TOKEN
from tests.e2e.conftest import metric_value, wait_until
from tests.support.kafka import topic_messages

VENDORS = {VENDOR: VENDOR_TOKEN, "banner": "banner-test-token-0002"}
ZONES = ("Lot 4", "Red Lot")
# Amounts whose float sum is not the decimal one (0.1 + 0.2 != 0.3).
AMOUNTS = ("0.10", "0.20", "14.50", "19.99", "0.01", "7.77", "3.33", "0.10", "100.00", "2.35")


def wire_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Permit:
    """A permit a vendor pushed through the gateway, as the test expects it to be counted."""

    reference: str
    plate: str
    zone: str
    vendor: str
    amount: Decimal
    currency: str
    start: datetime
    end: datetime
    live: bool = True

    def active(self, at: datetime) -> bool:
        return self.live and self.start <= at < self.end


class Vendors:
    """Vendors pushing, updating and deleting permits through the gateway."""

    def __init__(self, stack: Any, http: httpx.AsyncClient) -> None:
        self.stack, self.http = stack, http
        self.permits: list[Permit] = []

    async def _call(self, endpoint: str, vendor: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post(
            f"{self.stack.gateway_url}/api/{CLIENT}/v1/{endpoint}",
            json={"apiToken": VENDORS[vendor], **body},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def push(
        self, count: int, now: datetime, zones=ZONES, prefix: str = "ST", starts=(-1, -3, 1)
    ) -> None:
        for index in range(count):
            n = len(self.permits)
            # Some started an hour ago, some ended two hours ago, some start in an hour.
            start = now + timedelta(hours=starts[n % len(starts)])
            permit = Permit(
                reference="",
                plate=f"{prefix}{n:04d}",
                zone=zones[index % len(zones)],
                vendor=list(VENDORS)[n % 2],
                amount=Decimal(AMOUNTS[n % len(AMOUNTS)]),
                currency="USD" if n % 4 == 3 else "CAD",
                start=start,
                end=start + timedelta(hours=2) - timedelta(seconds=n % 60),
            )
            answer = await self._call(
                "permits/push",
                permit.vendor,
                {
                    "LicencePlate": permit.plate,
                    "zone": permit.zone,
                    "Amount": str(permit.amount),
                    "CurrencyID": permit.currency,
                    "startTime": wire_time(permit.start),
                    "endTime": wire_time(permit.end),
                },
            )
            permit.reference = answer["reference_id"]
            self.permits.append(permit)

    async def update(self, permit: Permit, amount: str, end: datetime) -> None:
        await self._call(
            "permits/update",
            permit.vendor,
            {"referenceID": permit.reference, "Amount": amount, "endTime": wire_time(end)},
        )
        permit.amount, permit.end = Decimal(amount), end

    async def delete(self, permit: Permit) -> None:
        await self._call("permits/delete", permit.vendor, {"referenceID": permit.reference})
        permit.live = False

    async def delivered(self) -> None:
        """Wait until the sandbox holds every pushed permit."""

        async def all_there() -> bool:
            return len(await self.stack.sandbox_permits(self.http)) >= len(self.permits)

        await wait_until(all_there, timeout=90)


def expected_zones(permits: list[Permit], now: datetime) -> dict[str, dict[str, Any]]:
    """Live, active and revenue per zone, computed from what the vendors sent."""
    zones: dict[str, dict[str, Any]] = {}
    for p in permits:
        zone = zones.setdefault(p.zone, {"created": 0, "live": 0, "active": 0, "revenue": {}})
        zone["created"] += 1
        zone["live"] += p.live
        zone["active"] += p.active(now)
        zone["revenue"][p.currency] = zone["revenue"].get(p.currency, Decimal("0")) + p.amount
    return zones


async def worker_stats(stack: Any, http: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    port = stack.env["PARKSTREAM_WORKER_WEB_PORT"]
    answer = await http.get(f"http://127.0.0.1:{port}/stats/zones", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def stats_when(stack, http, condition, timeout: float = 90.0) -> dict[str, Any]:
    """The worker's stats once complete and ``condition(zones by name)`` holds."""

    async def ready():
        data = await worker_stats(stack, http)
        zones = {z["zone"]: z for z in data["zones"]}
        return data if data["complete"] and condition(zones) else None

    return await wait_until(ready, timeout=timeout)


def created_in_all(permits: list[Permit]):
    want = expected_zones(permits, datetime.now(UTC))
    return lambda zones: all(
        zones.get(name, {}).get("created") == figures["created"] for name, figures in want.items()
    )


async def controller_loses(stack: Any, http: httpx.AsyncClient, permit: Permit) -> None:
    """Delete a permit in the Controller behind parkstream's back (with the Controller API)."""
    [stored] = (
        await http.get(f"{stack.sandbox_url}/_sandbox/permits", params={"plate": permit.plate})
    ).json()["permits"]
    answer = await http.post(
        f"{stack.sandbox_url}/api/{CLIENT}/v1/permits/delete",
        json={"apiToken": CONTROLLER_TOKEN, "referenceID": stored["reference_id"]},
    )
    assert answer.status_code == 200, answer.text


async def results_folded(stack: Any, http: httpx.AsyncClient) -> int:
    """Wait until the worker has read every record now in the results topic."""
    topic = stack.settings.topic("results")
    total = len(topic_messages(stack.env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"], topic))

    async def read_all() -> bool:
        text = await stack.worker_metrics(http)
        return metric_value(text, "parkstream_events_consumed_total", topic="results") >= total

    await wait_until(read_all, timeout=60)
    return total


async def test_stats_count_what_the_controller_applied_once_with_exact_revenue(stack, tmp_path):
    # The operator's zones: they get a zone label of their own (docs/metrics.md).
    aliases = tmp_path / "zones.json"
    aliases.write_text(json.dumps({zone: [] for zone in ZONES}))
    stack.env["PARKSTREAM_ZONE_ALIASES"] = str(aliases)
    stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=15) as http:
        vendors = Vendors(stack, http)
        await vendors.push(10, now)
        await vendors.delivered()
        extended, deleted, lost = vendors.permits[0], vendors.permits[1], vendors.permits[2]
        await vendors.update(extended, "20.00", now + timedelta(hours=5))
        await vendors.delete(deleted)
        # The Controller loses a permit; the vendor's update of it is then refused: 9009.
        await controller_loses(stack, http, lost)
        await vendors.update(lost, "1.00", now + timedelta(hours=5))
        lost.amount = Decimal(AMOUNTS[2])  # refused: the amount stays what was pushed

        data = await stats_when(
            stack, http, lambda zones: zones.get(lost.zone, {}).get("rejected") == {"9009": 1}
        )
        metrics = await stack.worker_metrics(http)
        assert (
            metric_value(
                metrics,
                "parkstream_controller_calls_total",
                endpoint="permits/update",
                outcome="rejected",
                error_code="9009",
            )
            == 1
        )

        zones = {z["zone"]: z for z in data["zones"]}
        want = expected_zones(vendors.permits, now)
        assert set(zones) == set(want)
        for name, figures in want.items():
            zone = zones[name]
            assert (zone["created"], zone["live"], zone["active"]) == (
                figures["created"],
                figures["live"],
                figures["active"],
            ), name
            assert {c: Decimal(a) for c, a in zone["revenue"].items()} == figures["revenue"], name
        assert zones[extended.zone]["updated"] == 1
        assert zones[deleted.zone]["deleted"] == 1
        for name in ZONES:
            assert (
                metric_value(metrics, "parkstream_zone_permits_total", zone=name, action="CREATE")
                == (want[name]["created"])
            )

        # The dispatcher may write a result twice (at-least-once): it counts once.
        messages = topic_messages(
            stack.env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"], stack.settings.topic("results")
        )
        [again] = [
            m
            for m in messages
            if codec().decode(m.value(), expected="ControllerResult")[1]["session_id"]
            == vendors.permits[3].reference
            and codec().decode(m.value(), expected="ControllerResult")[1]["endpoint"]
            == "permits/push"
        ]
        producer = Producer({"bootstrap.servers": stack.env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
        producer.produce(
            stack.settings.topic("results"),
            key=again.key(),
            value=again.value(),
            partition=again.partition(),
        )
        producer.flush(10)
        await wait_until(lambda: "duplicate result not counted" in worker.log(), timeout=60)
        after = await worker_stats(stack, http)
        assert after["zones"] == data["zones"]


@pytest.mark.slow
async def test_stats_survive_a_worker_restart(stack):
    stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=15) as http:
        vendors = Vendors(stack, http)
        await vendors.push(6, now)
        await vendors.delivered()
        await vendors.delete(vendors.permits[0])
        before = await stats_when(
            stack, http, lambda zones: zones.get(vendors.permits[0].zone, {}).get("deleted") == 1
        )
        await results_folded(stack, http)

        assert worker.stop() == 0
        stack.workers.clear()
        stack.start_worker()
        recovered = await stats_when(stack, http, lambda zones: bool(zones))
        assert recovered["zones"] == before["zones"]
        assert recovered["days"] == before["days"]

        # Folding goes on from the recovered figures, not from zero.
        await vendors.push(1, now, zones=(ZONES[0],), prefix="AFTER")
        later = await stats_when(stack, http, created_in_all(vendors.permits))
        zone = {z["zone"]: z for z in later["zones"]}[ZONES[0]]
        first = {z["zone"]: z for z in before["zones"]}[ZONES[0]]
        assert zone["created"] == first["created"] + 1
        assert Decimal(zone["revenue"]["CAD"]) == Decimal(first["revenue"]["CAD"]) + (
            vendors.permits[-1].amount
        )


async def _compare(stack: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(
        run_stats,
        stack.settings,
        zones=None,
        vendor=None,
        since=None,
        until=None,
        compare=True,
        worker_url=f"http://127.0.0.1:{stack.env['PARKSTREAM_WORKER_WEB_PORT']}",
        out=out,
    )
    return code, out.getvalue()


async def test_compare_agrees_after_a_run_and_differs_after_a_change_behind_parkstreams_back(
    stack,
):
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=15) as http:
        vendors = Vendors(stack, http)
        await vendors.push(6, now)
        await vendors.delivered()
        await vendors.delete(vendors.permits[0])
        await stats_when(
            stack, http, lambda zones: zones.get(vendors.permits[0].zone, {}).get("deleted") == 1
        )
        code, text = await _compare(stack)
        assert code == 0, text
        assert text.splitlines()[-1] == f"{len(ZONES)} zone(s) compared, 0 differ"

        # A vendor still calling the Controller directly: a permit parkstream never saw.
        direct = await http.post(
            f"{stack.sandbox_url}/api/{CLIENT}/v1/permits/push",
            json={
                "apiToken": CONTROLLER_TOKEN,
                "LicencePlate": "DIRECT1",
                "zone": ZONES[1],
                "startTime": wire_time(now),
                "endTime": wire_time(now + timedelta(hours=1)),
            },
        )
        assert direct.status_code == 200, direct.text
        code, text = await _compare(stack)
        assert code == 1, text
        [row] = [line for line in text.splitlines() if line.startswith(ZONES[1])]
        live = sum(p.live for p in vendors.permits if p.zone == ZONES[1])
        assert row.split()[-3:] == [str(live), str(live + 1), "-1"]


async def test_any_worker_answers_for_the_partitions_of_every_worker(stack):
    stack.start_sandbox()
    first = stack.start_worker()
    second = stack.start_worker(web_port=free_port())
    stack.start_gateway()
    ports = [w.env["PARKSTREAM_WORKER_WEB_PORT"] for w in (first, second)]
    async with httpx.AsyncClient(timeout=15) as http:

        async def shares() -> list[list[int]] | None:
            owned = [
                (
                    await http.get(
                        f"http://127.0.0.1:{port}/stats/zones/partial",
                        params={"partitions": "0,1,2"},
                    )
                ).json()["partitions"]
                for port in ports
            ]
            covered = sorted(p for share in owned for p in share)
            return owned if all(owned) and covered == [0, 1, 2] else None

        await wait_until(shares, timeout=90)  # both workers own some of the partitions
        vendors = Vendors(stack, http)
        await vendors.push(8, datetime.now(UTC).replace(microsecond=0))
        await vendors.delivered()
        want = created_in_all(vendors.permits)

        async def answer_of(port: str) -> dict[str, Any] | None:
            data = (await http.get(f"http://127.0.0.1:{port}/stats/zones")).json()
            zones = {z["zone"]: z for z in data["zones"]}
            return data if data["complete"] and want(zones) else None

        answers = [await wait_until(lambda p=port: answer_of(p), timeout=90) for port in ports]
        assert answers[0]["zones"] == answers[1]["zones"]
        assert sum(z["created"] for z in answers[0]["zones"]) == len(vendors.permits)
