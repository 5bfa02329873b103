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
