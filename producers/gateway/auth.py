"""Who is calling: a vendor named by its token, under the client code this deployment serves,
and the pass-through endpoints the operator granted it.

The Controller's order of refusals is kept: a JSON object (9003), the client code (9000,
validate/plate only), a token (9001), a known token (9002), the client this deployment
serves (9034).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from foundation.settings import Settings, SettingsError
from producers.openapi import PASS_THROUGH_ENDPOINTS
from schemas.controller import ContractError, Endpoint, normalize_client_code


class VendorDirectory:
    """Vendor tokens -> vendor names, compared in constant time.

    Tokens are kept as SHA-256 digests and every one is compared, so neither the
    time taken nor an early exit tells a caller how close its guess was.
    """

    def __init__(self, tokens: dict[str, str]) -> None:
        self._digests = [(name, _digest(token)) for name, token in tokens.items()]
        self.names = frozenset(tokens)

    def __repr__(self) -> str:
        return f"VendorDirectory(vendors={sorted(self.names)})"

    def vendor_for(self, token: str) -> str | None:
        """The vendor whose token this is, or ``None``."""
        presented = _digest(token)
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(presented, expected):
                found = name
        return found


class VendorGrants:
    """The pass-through endpoints each vendor may call, from ``Settings.grant_sources()``.

    Pushes and a vendor's own delivery status need no grant. A grant naming a vendor without
    a token, or an endpoint that is not a pass-through endpoint, is refused at start
    (``SettingsError`` naming the variable it came from): a typo must not pass silently.
    """

    def __init__(self, settings: Settings, vendors: frozenset[str]) -> None:
        granted: dict[str, frozenset[str]] = {}
        for variable, grants in settings.grant_sources():
            for vendor, endpoints in grants.items():
                if vendor not in vendors:
                    raise SettingsError(
                        f"{variable}: unknown vendor {vendor!r} (not in PARKSTREAM_VENDOR_TOKENS "
                        "or its file)"
                    )
                for endpoint in endpoints:
                    if endpoint not in PASS_THROUGH_ENDPOINTS:
                        raise SettingsError(
                            f"{variable}: unknown endpoint {endpoint!r} granted to {vendor!r}; "
                            f"grantable: {', '.join(PASS_THROUGH_ENDPOINTS)}"
                        )
                granted[vendor] = frozenset(endpoints)
        self._granted = granted

    def __repr__(self) -> str:
        shown = {vendor: sorted(endpoints) for vendor, endpoints in sorted(self._granted.items())}
        return f"VendorGrants({shown})"

    def allows(self, vendor: str, endpoint: str) -> bool:
        """May ``vendor`` call the pass-through ``endpoint``?"""
        return endpoint in self._granted.get(vendor, frozenset())


class Authenticator:
    """The vendors, their grants and the client code of one gateway."""

    def __init__(self, settings: Settings) -> None:
        self.vendors = VendorDirectory(settings.vendors)
        self.grants = VendorGrants(settings, self.vendors.names)
        self.client = normalize_client_code(settings.controller_client)

    def authenticate(self, contract: Endpoint, body: object, path_client: str | None) -> str:
        """The vendor of a request the Controller would let through, else ``ContractError``
        (in the Controller's order, module docstring)."""
        body_client, token = contract.credentials(body)
        vendor = self.vendor(token, field=contract.token_field)
        self.check_client(path_client if contract.client_in_path else body_client)
        return vendor

    def bearer_vendor(self, request: web.Request) -> str:
        """The vendor of a request's bearer token (or ``apiToken`` parameter); 9001 without
        one, 9002 for an unknown one."""
        token = _bearer_token(request)
        if token is None:
            raise ContractError(9001, detail="no bearer token or apiToken parameter")
        return self.vendor(token)

    def vendor(self, token: str, field: str | None = None) -> str:
        """The vendor whose token this is; 9002 (on ``field``) when none is."""
        vendor = self.vendors.vendor_for(token)
        if vendor is None:
            raise ContractError(9002, field=field, detail="unknown token")
        return vendor

    def check_client(self, client: str | None) -> None:
        """9034 unless ``client`` is the client code this deployment serves."""
        if client is None or normalize_client_code(client) != self.client:
            raise ContractError(9034, detail="token used under another client code")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = request.query.get("apiToken", "").strip()
    return token or None
