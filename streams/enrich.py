"""Enrichment: what parkstream adds to a vendor's event before the Controller sees it.

Pure functions over event records (plain dicts), no I/O:

- plates normalized as enforcement matches them (upper case, letters and digits);
- zone names mapped through the operator's alias table; a zone the table does not
  know is still pushed (the Controller keeps it as a "disconnected record") but is
  flagged so it can be counted and fixed;
- currency defaulted when an amount comes without one;
- vehicles get the operator's default province/state and plate type when absent;
- a user's type id is checked against the Controller's list (flagged when unknown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.controller import PERMIT_PLATE_MAX_LENGTH, normalize_plate


class ZoneAliasError(ValueError):
    """The zone alias file cannot be used (not JSON, wrong shape, an alias named twice)."""


def _zone_key(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ZoneDirectory:
    """The operator's zones, and every other name vendors use for them.

    ``aliases`` maps a spelling (compared case- and space-insensitively) to the
    zone name as the Controller knows it. An empty directory knows no zones and
    flags none: without a table nothing can be called unknown.
    """

    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, zones: dict[str, list[str]]) -> ZoneDirectory:
        """``{"Lot 4": ["L4", "Lot-4"], ...}``: each Controller zone and its aliases."""
        aliases: dict[str, str] = {}
        for zone, names in zones.items():
            if not isinstance(zone, str) or not isinstance(names, list):
                raise ZoneAliasError('expected {"Zone name": ["alias", ...], ...}')
            for name in [zone, *names]:
                if not isinstance(name, str) or not name.strip():
                    raise ZoneAliasError(f"zone {zone!r} has an empty or non-text alias")
                key = _zone_key(name)
                if aliases.get(key, zone) != zone:
                    raise ZoneAliasError(f"alias {name!r} names both {aliases[key]!r} and {zone!r}")
                aliases[key] = zone
        return cls(aliases)

    @classmethod
    def from_file(cls, path: Path) -> ZoneDirectory:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ZoneAliasError(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise ZoneAliasError(f"{path}: expected a JSON object of zone -> aliases")
        return cls.from_mapping(data)

    def resolve(self, zone: str | None) -> tuple[str | None, bool]:
        """``(zone to send, known)``. Unknown zones are sent as the vendor wrote them."""
        if zone is None or not self.aliases:
            return zone, True
        canonical = self.aliases.get(_zone_key(zone))
        return (canonical, True) if canonical is not None else (zone, False)


@dataclass(frozen=True)
class Defaults:
    """Operator defaults for what vendors leave out."""

    currency: str = "CAD"
    province: str | None = None
    plate_type: str | None = None


def enrich_session(
    event: dict[str, Any], zones: ZoneDirectory, defaults: Defaults
) -> tuple[dict[str, Any], list[str]]:
    """The enriched ``ParkingSessionEvent`` and its flags (e.g. ``["unknown_zone"]``)."""
    enriched = dict(event)
    flags: list[str] = []
    if enriched.get("plate"):
        plate = normalize_plate(enriched["plate"])
        # A plate that normalizes to nothing or too long is left for the contract to refuse.
        if plate and len(plate) <= PERMIT_PLATE_MAX_LENGTH:
            enriched["plate"] = plate
    zone, known = zones.resolve(enriched.get("zone"))
    enriched["zone"] = zone
    if not known:
        flags.append("unknown_zone")
    if enriched.get("amount") is not None and not enriched.get("currency"):
        enriched["currency"] = defaults.currency
    return enriched, flags


class UserTypeDirectory:
    """The Controller's user types (``profiles/types/list``), as last fetched.

    Until the first fetch it knows nothing and flags nothing.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def update(self, user_types: list[dict[str, Any]]) -> None:
        """Replace the directory with a ``profiles/types/list`` answer's ``user_types``."""
        self.names = {str(t["id"]): str(t.get("type_name", "")) for t in user_types}

    def known(self, type_id: str) -> bool:
        return not self.names or type_id in self.names


def enrich_user(
    event: dict[str, Any], user_types: UserTypeDirectory
) -> tuple[dict[str, Any], list[str]]:
    """A ``UserEvent`` unchanged, flagged when its user type is not one the Controller lists."""
    type_id = event.get("user_type_id")
    flags = [] if type_id is None or user_types.known(str(type_id)) else ["unknown_user_type"]
    return event, flags


def enrich_vehicle(event: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    """A ``VehicleEvent`` with a normalized plate and the operator's defaults filled in."""
    enriched = dict(event)
    if enriched.get("plate"):
        enriched["plate"] = normalize_plate(enriched["plate"]) or enriched["plate"]
    if not enriched.get("prov") and not enriched.get("prov_id") and defaults.province:
        enriched["prov"] = defaults.province
    if not enriched.get("plate_type") and not enriched.get("plate_type_id") and defaults.plate_type:
        enriched["plate_type"] = defaults.plate_type
    return enriched
