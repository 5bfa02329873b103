import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.references import (
    ReferenceIssuer,
    body_digest,
    check_idempotency_key,
    dedupe_key,
    fingerprint,
)
from schemas.controller import ENDPOINTS, ContractError
from tests.support.examples import PERMIT_PUSH_EXAMPLE

issuer = ReferenceIssuer("test-reference-secret-0001")
PUSH = ENDPOINTS["permits/push"]


def push_fields(**changes):
    return PUSH.validate(
        {**PERMIT_PUSH_EXAMPLE, **changes}, require_token=False, lenient_times=True
    )


def reference(vendor="hotspot", key=None, **changes):
    return issuer.reference_id(vendor, fingerprint("permits/push", push_fields(**changes), key))


def test_a_reference_id_fits_the_documented_reference_limits():
    ref = reference()
    assert len(ref) <= 50
    assert re.fullmatch(r"[A-Za-z0-9-]+", ref)


def test_the_same_request_of_the_same_vendor_gets_the_same_reference_id():
    assert reference() == reference()


def test_another_vendor_sending_the_same_body_gets_another_reference_id():
    assert reference("hotspot") != reference("banner")


def test_a_different_body_gets_a_different_reference_id():
    assert reference() != reference(LicencePlate="OTHER1")


def test_the_same_permit_in_other_aliases_and_an_offset_is_the_same_request():
    other = PUSH.validate(
        {
            "amount": "14.50",
            "currency": "cad",
            "plate": "PL8RDR",
            "ParkingZoneName": "Lot 4",
            "TicketNumber": "L4-1138",
            "StartDateUtc": "2018-07-02T05:00:00-04:00",
            "EndDateUtc": "2018-07-02T09:30:00Z",
        },
        require_token=False,
        lenient_times=True,
    )
    assert body_digest(other) == body_digest(push_fields())


def test_an_idempotency_key_decides_sameness_instead_of_the_body():
    assert reference(key="k-1") == reference(key="k-1", Amount="20.00")
    assert reference(key="k-1") != reference(key="k-2")
    assert reference(key="k-1") != reference()


def test_a_reference_id_verifies_only_for_the_vendor_it_was_issued_to():
    ref = reference("hotspot")
    assert issuer.verify(ref, "hotspot")
    assert not issuer.verify(ref, "banner")


def test_a_reference_id_from_another_secret_does_not_verify():
    other = ReferenceIssuer("another-reference-secret-02")
    ref = other.reference_id("hotspot", "body:abc")
    assert not issuer.verify(ref, "hotspot")


def test_a_tampered_reference_id_does_not_verify():
    ref = reference()
    flipped = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    assert not issuer.verify(flipped, "hotspot")
    session_changed = ref[:3] + ("0" if ref[3] != "0" else "1") + ref[4:]
    assert not issuer.verify(session_changed, "hotspot")


@given(st.text(max_size=60))
def test_made_up_ids_never_verify(made_up):
    assert not issuer.verify(made_up, "hotspot")


def test_the_controllers_own_uuid_style_ids_are_not_parkstream_ids():
    assert not issuer.verify("1a9b5375-cb75-4c71-9939-eeae550b09ac", "hotspot")


def test_receipt_numbers_are_stable_json_safe_and_vendor_specific():
    print_ = fingerprint("vehicles/push", {"plate": "PL8RDR", "prov": "MA"}, None)
    number = issuer.receipt_number("hotspot", print_)
    assert 0 < number < 2**53
    assert number == issuer.receipt_number("hotspot", print_)
    assert number != issuer.receipt_number("banner", print_)


def test_dedupe_keys_differ_across_vendors_and_endpoints_but_not_across_retries():
    push = fingerprint("permits/push", push_fields(), "same-key")
    delete = fingerprint("permits/delete", {"reference_id": "x"}, "same-key")
    assert dedupe_key("hotspot", push) == dedupe_key("hotspot", push)
    assert dedupe_key("hotspot", push) != dedupe_key("banner", push)
    assert dedupe_key("hotspot", push) != dedupe_key("hotspot", delete)
    assert dedupe_key("hotspot", push).startswith("key-")
    assert dedupe_key("hotspot", fingerprint("permits/push", push_fields(), None)).startswith(
        "body-"
    )


@pytest.mark.parametrize("bad", ["", " leading-space", "x" * 256, "tab\there", "é"])
def test_an_unusable_idempotency_key_is_refused_with_9033(bad):
    with pytest.raises(ContractError) as caught:
        check_idempotency_key(bad)
    assert caught.value.code == 9033


def test_a_uuid_idempotency_key_is_taken_as_it_is():
    key = "0b0f7c53-3d6f-4a59-9a4e-2d1b1a0a8c11"
    assert check_idempotency_key(key) == key
    assert check_idempotency_key(None) is None


def test_the_secret_never_shows_in_the_issuers_repr():
    assert "test-reference-secret" not in repr(issuer)
