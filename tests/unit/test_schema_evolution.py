"""Schema evolution: records written by a previous schema version are read by the current one.

``schemas/history/`` keeps every previous version of a changed schema. VehicleEvent v2
added the optional ``source`` (default null) to v1.
"""

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from fastavro.schema import parse_schema

from schemas.avro import HEADER_LEN, SCHEMA_DIR, SCHEMA_FILES, AvroCodec, codec

HISTORY = sorted((SCHEMA_DIR / "history").glob("*.avsc"))
V1 = json.loads((SCHEMA_DIR / "history" / "vehicle_event.v1.avsc").read_text())


def v1_vehicle():
    return {
        "event_id": "e-1",
        "vendor": "hotspot",
        "received_at": datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        "idempotency_key": "body-" + "0" * 64,
        "reference_id": "7",
        "plate": "PL8RDR",
        "plate_type_id": None,
        "plate_type": "Motorcycle",
        "prov_id": None,
        "prov": "MA",
        "make_id": None,
        "make": None,
        "type_id": None,
        "type": None,
        "colour_id": None,
        "colour": "red",
        "year": None,
        "vin": None,
    }


def single_object(schema: dict, record: dict, folder: Path) -> bytes:
    """What a producer whose current ``schema`` is the old one wrote (single-object)."""
    for name, file in SCHEMA_FILES.items():
        source = SCHEMA_DIR / file
        text = json.dumps(schema) if name == schema["name"] else source.read_text()
        (folder / file).write_text(text)
    return AvroCodec(schema_dir=folder).encode(schema["name"], record)


def test_a_vehicle_event_written_by_version_1_is_read_by_the_current_schema(tmp_path):
    data = single_object(V1, v1_vehicle(), tmp_path)
    name, record = AvroCodec().decode(data, expected="VehicleEvent")
    assert name == "VehicleEvent"
    assert record == {**v1_vehicle(), "source": None}


def test_the_version_1_fingerprint_is_not_the_current_one(tmp_path):
    current = AvroCodec().encode("VehicleEvent", {**v1_vehicle(), "source": None})
    old = single_object(V1, v1_vehicle(), tmp_path)
    assert current[2:HEADER_LEN] != old[2:HEADER_LEN]


def test_a_version_1_record_in_the_confluent_format_is_read_by_the_current_schema():
    url = f"mock://evolution-{uuid.uuid4().hex[:8]}"
    reader = codec(url)
    client = reader._registry.client
    schema_id = client.register_schema(
        "io.parkstream.v1.VehicleEvent", Schema(json.dumps(V1), "AVRO")
    )
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parse_schema(V1), v1_vehicle())
    data = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    assert reader.decode(data)[1] == {**v1_vehicle(), "source": None}
    # Writing with the current version registers it as the subject's next version.
    reader.encode("VehicleEvent", {**v1_vehicle(), "source": "GATEWAY"})
    assert len(client.get_versions("io.parkstream.v1.VehicleEvent")) == 2


@pytest.mark.parametrize("old_path", HISTORY, ids=[p.name for p in HISTORY])
def test_every_field_added_since_a_history_version_has_a_default(old_path):
    old = json.loads(old_path.read_text())
    current = json.loads((SCHEMA_DIR / SCHEMA_FILES[old["name"]]).read_text())
    old_names = {f["name"] for f in old["fields"]}
    added = [f for f in current["fields"] if f["name"] not in old_names]
    assert added, f"{old_path.name} is no older than the current schema"
    assert all("default" in f for f in added)
    kept = {f["name"]: f["type"] for f in current["fields"] if f["name"] in old_names}
    assert kept == {f["name"]: f["type"] for f in old["fields"]}
