"""The documented example requests from shared/opscom-api, as test data."""

# shared/opscom-api/permit-create.txt, "Raw Request" (apiToken replaced per test).
PERMIT_PUSH_EXAMPLE = {
    "Amount": "14.50",
    "CurrencyID": "CAD",
    "LicencePlate": "PL8RDR",
    "zone": "Lot 4",
    "permitNo": "L4-1138",
    "startTime": "2018-07-02T09:00:00",
    "endTime": "2018-07-02T09:30:00",
}

# api-reference.txt, "Push API: Vehicle Create", JavaScript Request (apiToken replaced per test).
VEHICLE_PUSH_EXAMPLE = {
    "plate": "PL8RDR",
    "plateType": "Motorcycle",
    "prov": "MA",
    "make": "kia",
    "type": "commercial",
    "colour": "red",
    "year": "2021",
    "vin": "8GKS1AKC7FR518845",
}

# api-reference.txt, "Push API: User Create/Update", Raw Request (apiToken replaced per test).
PROFILE_PUSH_EXAMPLE = {
    "unique_id": "tester23",
    "login_source": "OPSCOM",
    "first_name": "firstname",
    "last_name": "lastname",
    "user_name": "username",
    "email": "test@test.com",
    "street": (
        "123 Main Street, 123 Main Street,123 Main Street,123 Main Street,123 Main Street,"
        "123 Main Street"
    ),
    "city": "Everywhere",
    "province": "bc",
    "state": "NY",
    "postal_code": "HOHOHO",
    "zip": "12345-1212",
    "street2": "123 General Street",
    "city2": "Somewhere",
    "province2": "AB",
    "state2": "MA",
    "postal_code2": "A9A9A9",
    "zip2": "54321-1212",
    "phone_cell": "613-555-1212",
    "user_type_id": "6",
    "employ_no": "employee number: default",
    "employee_phone": "emp ph. klondike 555",
    "student_no": "SN 543209854",
    "student_phone": "999",
    "driver_licence_num": "QC 99999999",
    "driver_license_num": "NYNY",
    "date_of_birth": "1901-01-31",
    "locker_user_type_id": "3",
    "driver_licence_prov": "BC",
    "driver_license_state": "CA",
}

# api-reference.txt, "Push API: Permit Update" / "Permit Delete" (referenceID set per test).
PERMIT_UPDATE_EXAMPLE = {
    "plate": "PL8RDR",
    "Amount": "14.50",
    "currency": "CAD",
    "endTime": "2018-07-02T09:30:00",
}


def session_event(**overrides: object) -> dict[str, object]:
    """A decoded ``ParkingSessionEvent`` for the documented permit push (fields overridable)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    event: dict[str, object] = {
        "event_id": "e-1",
        "session_id": "ps-ref-1",
        "action": "CREATE",
        "vendor": "hotspot",
        "received_at": datetime(2018, 7, 2, 13, 0, 0, 123000, tzinfo=UTC),
        "plate": "PL8RDR",
        "amount": Decimal("14.50"),
        "currency": "CAD",
        "start_time": datetime(2018, 7, 2, 9, 0, tzinfo=UTC),
        "end_time": datetime(2018, 7, 2, 9, 30, tzinfo=UTC),
        "permit_no": "L4-1138",
        "zone": "Lot 4",
        "promo_code": None,
        "idempotency_key": None,
    }
    return {**event, **overrides}
