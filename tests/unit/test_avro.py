import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.avro import MAGIC, AvroCodec, DecodeError
from tests.support.examples import session_event

codec = AvroCodec()


def test_a_session_event_round_trips_with_exact_money_and_utc_times():
    event = session_event()
    name, decoded = codec.decode(codec.encode("ParkingSessionEvent", event))
    assert name == "ParkingSessionEvent"
    assert decoded == event
    assert isinstance(decoded["amount"], Decimal)
    assert decoded["start_time"].tzinfo is not None


def test_records_are_single_object_encoded():
    data = codec.encode("ParkingSessionEvent", session_event())
    assert data[:2] == MAGIC


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2))
def test_every_documented_amount_round_trips_exactly(amount):
    _, decoded = codec.decode(codec.encode("ParkingSessionEvent", session_event(amount=amount)))
    assert decoded["amount"] == amount


@pytest.mark.parametrize(
    "data",
    [None, b"", b"{}", b"\xc3\x01", b"\xc3\x01" + b"\x00" * 8 + b"abc", b"not avro at all"],
)
def test_bytes_that_are_not_our_records_raise_decode_error(data):
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_a_truncated_body_raises_decode_error():
    data = codec.encode("ParkingSessionEvent", session_event())
    with pytest.raises(DecodeError):
        codec.decode(data[:20])


def test_a_record_of_another_type_is_refused_when_a_type_is_expected():
    data = codec.encode("ParkingSessionEvent", session_event())
    with pytest.raises(DecodeError, match="expected a ControllerCommand"):
        codec.decode(data, expected="ControllerCommand")


def test_a_record_that_breaks_its_schema_cannot_be_encoded():
    with pytest.raises(ValueError):
        codec.encode("ParkingSessionEvent", session_event(action="PARK"))


def test_every_record_carries_any_currency_code_the_contract_takes():
    # The contract limits a currency to 10 characters and lists none (docs/controller-contract.md
    # decision 18): every schema holding one must hold any such text, not an enum of codes.
    schemas = Path(__file__).parents[2] / "schemas"
    holders = {}
    for path in sorted(schemas.glob("*.avsc")):
        record = json.loads(path.read_text())
        for field in record["fields"]:
            if field["name"] == "currency":
                holders[record["name"]] = field["type"]
    assert holders == {
        "ParkingSessionEvent": ["null", "string"],
        "ControllerCommand": ["null", "string"],
        "ControllerResult": ["null", "string"],
    }
    for code in ("EUR", "POINTS-123"):
        _, decoded = codec.decode(codec.encode("ParkingSessionEvent", session_event(currency=code)))
        assert decoded["currency"] == code
