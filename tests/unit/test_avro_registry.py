"""The Confluent wire format through a Schema Registry (the library's in-memory mock://)."""

import uuid
from datetime import UTC, date, datetime

import pytest

from schemas.avro import CONFLUENT_MAGIC, MAGIC, AvroCodec, DecodeError, codec


def vehicle_event(**overrides):
    event = {
        "event_id": "e-1",
        "vendor": "hotspot",
        "received_at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "idempotency_key": "body-" + "0" * 64,
        "reference_id": "123456",
        "plate": "PL8RDR",
        "plate_type_id": None,
        "plate_type": "Motorcycle",
        "prov_id": None,
        "prov": "MA",
        "make_id": None,
        "make": "kia",
        "type_id": None,
        "type": "commercial",
        "colour_id": None,
        "colour": "red",
        "year": "2021",
        "vin": "8GKS1AKC7FR518845",
        "source": "GATEWAY",
    }
    return {**event, **overrides}


def user_event(**overrides):
    names = [f["name"] for f in AvroCodec().schema("UserEvent")["fields"]]
    event = dict.fromkeys(names)
    event.update(
        {
            "event_id": "e-2",
            "vendor": "banner",
            "received_at": datetime(2026, 1, 2, tzinfo=UTC),
            "idempotency_key": "key-" + "1" * 64,
            "reference_id": "42",
            "unique_id": "tester23",
            "login_source": "OPSCOM",
            "date_of_birth": date(1901, 1, 31),
            "source": "FILE",
        }
    )
    return {**event, **overrides}


@pytest.fixture
def registry_url():
    return f"mock://parkstream-{uuid.uuid4().hex[:8]}"


def test_vehicle_and_user_events_round_trip_with_utc_times_and_dates():
    plain = AvroCodec()
    for name, event in (("VehicleEvent", vehicle_event()), ("UserEvent", user_event())):
        assert plain.decode(plain.encode(name, event)) == (name, event)


def test_with_a_registry_records_are_in_the_confluent_wire_format(registry_url):
    registered = AvroCodec(registry_url=registry_url)
    data = registered.encode("VehicleEvent", vehicle_event())
    assert data[:1] == CONFLUENT_MAGIC
    assert registered.decode(data, expected="VehicleEvent") == ("VehicleEvent", vehicle_event())


def test_schemas_are_registered_under_their_record_names(registry_url):
    registered = codec(registry_url)
    registered.encode("UserEvent", user_event())
    registered.encode("VehicleEvent", vehicle_event())
    client = registered._registry.client
    assert sorted(client.get_subjects()) == [
        "io.parkstream.v1.UserEvent",
        "io.parkstream.v1.VehicleEvent",
    ]


def test_a_registry_codec_still_reads_single_object_records(registry_url):
    old = AvroCodec().encode("VehicleEvent", vehicle_event())
    assert old[:2] == MAGIC
    assert codec(registry_url).decode(old)[1] == vehicle_event()


def test_a_confluent_record_without_a_registry_is_a_decode_error(registry_url):
    data = codec(registry_url).encode("VehicleEvent", vehicle_event())
    with pytest.raises(DecodeError, match="no schema registry"):
        AvroCodec().decode(data)


def test_an_unknown_schema_id_is_a_decode_error(registry_url):
    with pytest.raises(DecodeError, match="not in the registry"):
        codec(registry_url).decode(CONFLUENT_MAGIC + (999).to_bytes(4, "big") + b"\x00")


def test_a_record_that_breaks_its_schema_is_refused_before_the_registry(registry_url):
    with pytest.raises(ValueError):
        codec(registry_url).encode("VehicleEvent", vehicle_event(source="FAX"))
