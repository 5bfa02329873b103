import json
from decimal import Decimal

import pytest

from streams.enrich import (
    Defaults,
    UserTypeDirectory,
    ZoneAliasError,
    ZoneDirectory,
    enrich_session,
    enrich_user,
    enrich_vehicle,
)

ZONES = ZoneDirectory.from_mapping({"Lot 4": ["L4", "Lot-4"], "Red Lot": ["RED"]})


def test_plates_are_normalized_as_enforcement_matches_them():
    event, _ = enrich_session({"plate": "pl8-r dr"}, ZONES, Defaults())
    assert event["plate"] == "PL8RDR"


@pytest.mark.parametrize("spelling", ["L4", "l4", "Lot-4", "lot 4", "  LOT   4 "])
def test_zone_aliases_map_to_the_controller_zone(spelling):
    event, flags = enrich_session({"zone": spelling}, ZONES, Defaults())
    assert (event["zone"], flags) == ("Lot 4", [])


def test_an_unknown_zone_is_still_sent_but_flagged():
    event, flags = enrich_session({"zone": "Blue Lot"}, ZONES, Defaults())
    assert (event["zone"], flags) == ("Blue Lot", ["unknown_zone"])


def test_without_an_alias_table_no_zone_is_called_unknown():
    assert enrich_session({"zone": "Anything"}, ZoneDirectory(), Defaults())[1] == []


def test_currency_is_defaulted_only_when_an_amount_has_none():
    assert (
        enrich_session({"amount": Decimal("1.00")}, ZONES, Defaults("USD"))[0]["currency"] == "USD"
    )
    assert (
        enrich_session({"amount": Decimal("1.00"), "currency": "CAD"}, ZONES, Defaults("USD"))[0][
            "currency"
        ]
        == "CAD"
    )
    assert enrich_session({"amount": None}, ZONES, Defaults("USD"))[0].get("currency") is None


def test_vehicles_get_the_operator_defaults_only_when_absent():
    defaults = Defaults(province="ON", plate_type="Passenger")
    assert enrich_vehicle({"plate": "abc 123"}, defaults) == {
        "plate": "ABC123",
        "prov": "ON",
        "plate_type": "Passenger",
    }
    assert (
        enrich_vehicle({"plate": "X1", "prov": "QC", "plate_type": "Motorcycle"}, defaults)["prov"]
        == "QC"
    )


def test_an_alias_naming_two_zones_is_refused(tmp_path):
    path = tmp_path / "zones.json"
    path.write_text(json.dumps({"Lot 4": ["L4"], "Lot 5": ["l4"]}))
    with pytest.raises(ZoneAliasError, match="names both"):
        ZoneDirectory.from_file(path)


def test_a_zone_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "zones.json"
    path.write_text("Lot 4: L4")
    with pytest.raises(ZoneAliasError):
        ZoneDirectory.from_file(path)


def test_a_user_type_the_controller_does_not_list_is_flagged_once_the_list_is_known():
    types = UserTypeDirectory()
    assert enrich_user({"user_type_id": "99"}, types)[1] == []  # nothing known yet
    types.update([{"id": "1", "type_name": "Full Time Student"}, {"id": "6", "type_name": "Demo"}])
    assert enrich_user({"user_type_id": "6"}, types)[1] == []
    assert enrich_user({"user_type_id": "99"}, types)[1] == ["unknown_user_type"]
    assert enrich_user({"user_type_id": None}, types)[1] == []
