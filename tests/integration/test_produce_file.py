"""``parkstream produce FILE``: a vendor export loaded into Kafka, bad lines set aside."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from schemas.avro import codec
from tests.support.examples import PERMIT_PUSH_EXAMPLE, VEHICLE_PUSH_EXAMPLE
from tests.support.kafka import topic_messages

REPO = Path(__file__).resolve().parents[2]


def produce(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # The test broker (Tansu) loses some records of multi-record batches it acknowledged.
    env = {**env, "PARKSTREAM_PRODUCER_BATCH_MESSAGES": "1"}
    return subprocess.run(
        [sys.executable, "-m", "parkstream.cli", "produce", *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def topic(env: dict[str, str], name: str):
    return topic_messages(
        env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
        f"{env['PARKSTREAM_TOPIC_PREFIX']}parkstream.{name}.v1",
        timeout=30,
    )


# Every 33rd line is bad, in one of five documented ways: 3% of 10,000.
BAD_KINDS = [
    ("{not json", 9003),
    (json.dumps({**PERMIT_PUSH_EXAMPLE, "LicencePlate": ""}), 9006),
    (json.dumps({**PERMIT_PUSH_EXAMPLE, "endTime": "02/07/2018"}), 9005),
    (json.dumps({**PERMIT_PUSH_EXAMPLE, "Amount": "14.5"}), 9033),
    (json.dumps([PERMIT_PUSH_EXAMPLE]), 9003),
]


def write_permits(path: Path, count: int, bad_every: int | None) -> dict[int, int]:
    """Write ``count`` lines; return {line number: expected ErrorCode} of the bad ones."""
    bad: dict[int, int] = {}
    with path.open("w") as out:
        for number in range(1, count + 1):
            if bad_every and number % bad_every == 0:
                text, code = BAD_KINDS[(number // bad_every) % len(BAD_KINDS)]
                bad[number] = code
            else:
                text = json.dumps({**PERMIT_PUSH_EXAMPLE, "permitNo": f"P-{number}"})
            out.write(text + "\n")
    return bad


def test_ten_thousand_lines_with_3_percent_bad_deliver_every_good_one(stack_env, tmp_path):
    export = tmp_path / "hotspot-export.jsonl"
    bad = write_permits(export, 10_000, bad_every=33)
    assert len(bad) == 303

    done = produce(stack_env, str(export), "--kind", "permit", "--vendor", "hotspot")

    assert done.returncode == 1, done.stderr
    assert "lines/s" in done.stderr  # the progress bar, with its rate
    assert "10000 lines read: 9697 accepted, 303 rejected" in done.stdout
    events = [
        codec().decode(m.value(), "ParkingSessionEvent")[1] for m in topic(stack_env, "sessions")
    ]
    assert sorted(e["permit_no"] for e in events) == sorted(
        f"P-{n}" for n in range(1, 10_001) if n not in bad
    )
    assert {e["vendor"] for e in events} == {"hotspot"}
    rejects = [
        json.loads(line) for line in (tmp_path / "hotspot-export.jsonl.rejects.jsonl").open()
    ]
    assert {r["line"]: r["error_code"] for r in rejects} == bad
    assert all(r["error_message"] for r in rejects)


def test_a_clean_csv_of_vehicles_exits_0_and_writes_receipts(stack_env, tmp_path):
    export = tmp_path / "vehicles.csv"
    with export.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(VEHICLE_PUSH_EXAMPLE))
        writer.writeheader()
        for plate in ("AAA111", "BBB222", "CCC333"):
            writer.writerow({**VEHICLE_PUSH_EXAMPLE, "plate": plate})
    receipts = tmp_path / "receipts.jsonl"

    done = produce(
        stack_env,
        str(export),
        "--kind",
        "vehicle",
        "--vendor",
        "banner",
        "--receipts",
        str(receipts),
    )

    assert done.returncode == 0, done.stderr
    assert "3 lines read: 3 accepted, 0 rejected" in done.stdout
    keys = sorted(m.key() for m in topic(stack_env, "vehicles"))
    assert keys == [b"AAA111:MA", b"BBB222:MA", b"CCC333:MA"]
    [event] = [
        codec().decode(m.value())[1]
        for m in topic(stack_env, "vehicles")
        if m.key() == b"AAA111:MA"
    ]
    assert (event["vendor"], event["source"]) == ("banner", "FILE")
    # Receipts come in delivery order (three keys, three partitions).
    assert sorted(json.loads(line)["line"] for line in receipts.open()) == [2, 3, 4]
    assert (tmp_path / "vehicles.csv.rejects.jsonl").read_text() == ""


def test_loading_the_same_file_twice_gives_the_same_reference_ids(stack_env, tmp_path):
    export = tmp_path / "again.jsonl"
    write_permits(export, 3, bad_every=None)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    for receipts in (first, second):
        assert (
            produce(
                stack_env,
                str(export),
                "--kind",
                "permit",
                "--vendor",
                "hotspot",
                "--receipts",
                str(receipts),
            ).returncode
            == 0
        )
    assert sorted(first.read_text().splitlines()) == sorted(second.read_text().splitlines())
    assert len(first.read_text().splitlines()) == 3


def test_usage_errors_exit_2_and_produce_nothing(stack_env, tmp_path):
    odd = tmp_path / "export.txt"
    odd.write_text("{}\n")
    assert (
        produce(
            stack_env, str(tmp_path / "missing.jsonl"), "--kind", "permit", "--vendor", "v"
        ).returncode
        == 2
    )
    assert produce(stack_env, str(odd), "--kind", "permit", "--vendor", "v").returncode == 2
    assert produce(stack_env, str(odd), "--kind", "ticket", "--vendor", "v").returncode == 2
    assert produce(stack_env, str(odd), "--kind", "permit").returncode == 2
    assert topic(stack_env, "sessions") == []
