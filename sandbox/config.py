"""Sandbox settings, read once at start from ``PARKSTREAM_*``.

| variable | default | meaning |
| --- | --- | --- |
| PARKSTREAM_CONTROLLER_CLIENT | OC-TOMA | the one client code the sandbox serves |
| PARKSTREAM_CONTROLLER_API_TOKEN | sandbox-token | the API token of that client |
| PARKSTREAM_SANDBOX_DB | (memory) | SQLite file; state survives a restart |
| PARKSTREAM_SANDBOX_ERROR_HTTP_STATUS | (contract) | one HTTP status for every ErrorCode answer |
| PARKSTREAM_SANDBOX_PERMIT_TYPE | temp | the "type" of pushed permits in stats/validate |
| PARKSTREAM_SANDBOX_TIMEZONE | UTC | display zone of validate/plate times |
| PARKSTREAM_SANDBOX_NOW | (wall clock) | fixed "now", Y-m-d\\TH:i:s UTC |
| PARKSTREAM_SANDBOX_LOGIN_SOURCES | OPSCOM | valid profile login sources, comma list |
| PARKSTREAM_SANDBOX_JOURNAL_SIZE | 10000 | calls kept in the journal |
| PARKSTREAM_SANDBOX_SEED_EXAMPLES | true | seed the documented overdue violation |
| PARKSTREAM_SANDBOX_FAULT_* | off | see sandbox.faults.FaultConfig |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.faults import FaultConfig
from schemas.controller import parse_time

DEFAULT_CLIENT = "OC-TOMA"
DEFAULT_API_TOKEN = "sandbox-token"


def load_timezone(name: str) -> tzinfo:
    """``UTC`` needs no tz database; anything else comes from zoneinfo."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass
class SandboxConfig:
    """Everything the sandbox needs; the token never appears in ``repr``."""

    client: str
    api_token: str = field(repr=False)
    db_path: str | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    error_http_status: int | None = None
    permit_type: str = "temp"
    display_timezone: str = "UTC"
    now: datetime | None = None
    login_sources: tuple[str, ...] = ("OPSCOM",)
    journal_size: int = 10_000
    seed_examples: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not self.client.strip():
            problems.append("client code must not be empty")
        if not self.api_token.strip():
            problems.append("API token must not be empty")
        if self.error_http_status is not None and not 200 <= self.error_http_status <= 599:
            problems.append("error_http_status must be an HTTP status 200-599")
        if not self.permit_type.strip():
            problems.append("permit_type must not be empty")
        try:
            load_timezone(self.display_timezone)
        except ValueError as exc:
            problems.append(str(exc))
        if self.now is not None and self.now.tzinfo is None:
            problems.append("now must be timezone-aware")
        if not self.login_sources:
            problems.append("login_sources must name at least one source")
        if self.journal_size < 1:
            problems.append("journal_size must be >= 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def timezone(self) -> tzinfo:
        return load_timezone(self.display_timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        """Read the variables above; ValueError lists every bad value."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def text(name: str, default: str | None) -> str | None:
            value = env.get(name)
            return default if value is None or value.strip() == "" else value.strip()

        def integer(name: str, default: int | None) -> int | None:
            raw = text(name, None)
            if raw is None:
                return default
            try:
                return int(raw)
            except ValueError:
                problems.append(f"{name} must be an integer, got {raw!r}")
                return default

        now = None
        raw_now = text("PARKSTREAM_SANDBOX_NOW", None)
        if raw_now is not None:
            try:
                now = parse_time(raw_now, lenient=True)
            except ValueError:
                problems.append(f"PARKSTREAM_SANDBOX_NOW must be Y-m-d\\TH:i:s, got {raw_now!r}")
        seed_raw = (text("PARKSTREAM_SANDBOX_SEED_EXAMPLES", "true") or "true").lower()
        if seed_raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            problems.append("PARKSTREAM_SANDBOX_SEED_EXAMPLES must be true or false")
        faults = FaultConfig()
        try:
            faults = FaultConfig.from_env(env)
        except ValueError as exc:
            problems.append(f"PARKSTREAM_SANDBOX_FAULT_*: {exc}")
        sources = tuple(
            s.strip()
            for s in (text("PARKSTREAM_SANDBOX_LOGIN_SOURCES", "OPSCOM") or "").split(",")
            if s.strip()
        )
        values = {
            "client": text("PARKSTREAM_CONTROLLER_CLIENT", DEFAULT_CLIENT) or DEFAULT_CLIENT,
            "api_token": text("PARKSTREAM_CONTROLLER_API_TOKEN", DEFAULT_API_TOKEN)
            or DEFAULT_API_TOKEN,
            "db_path": text("PARKSTREAM_SANDBOX_DB", None),
            "faults": faults,
            "error_http_status": integer("PARKSTREAM_SANDBOX_ERROR_HTTP_STATUS", None),
            "permit_type": text("PARKSTREAM_SANDBOX_PERMIT_TYPE", "temp") or "temp",
            "display_timezone": text("PARKSTREAM_SANDBOX_TIMEZONE", "UTC") or "UTC",
            "now": now,
            "login_sources": sources,
            "journal_size": integer("PARKSTREAM_SANDBOX_JOURNAL_SIZE", 10_000) or 0,
            "seed_examples": seed_raw in ("1", "true", "yes", "on"),
        }
        if problems:
            raise ValueError("invalid sandbox settings: " + "; ".join(problems))
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"invalid sandbox settings: {exc}") from None
