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

from foundation.settings import (
    SettingsError,
    parse_flag,
    parse_positive_int,
    read_env,
    setting,
)
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


def _timezone(raw: str) -> str:
    load_timezone(raw.strip())
    return raw.strip()


def _status(raw: str) -> int:
    value = int(raw)
    if not 200 <= value <= 599:
        raise ValueError("must be an HTTP status 200-599")
    return value


def _now(raw: str) -> datetime:
    try:
        return parse_time(raw.strip(), lenient=True)
    except ValueError:
        raise ValueError("must be Y-m-d\\TH:i:s (UTC)") from None


def _sources(raw: str) -> tuple[str, ...]:
    sources = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not sources:
        raise ValueError("must name at least one source, comma-separated")
    return sources


def _text(raw: str) -> str:
    return raw.strip()


@dataclass
class SandboxConfig:
    """Everything the sandbox needs; the token never appears in ``repr``.

    Declared with parkstream's settings helpers (``foundation.settings.setting``): the
    same parsing rules, and a bad value stops ``parkstream sandbox`` with one line
    naming the variable.
    """

    client: str = setting("CONTROLLER_CLIENT", _text, default=DEFAULT_CLIENT)
    api_token: str = setting(
        "CONTROLLER_API_TOKEN", _text, secret=True, default=DEFAULT_API_TOKEN, repr=False
    )
    db_path: str | None = setting("SANDBOX_DB", _text, default=None)
    faults: FaultConfig = field(default_factory=FaultConfig)  # PARKSTREAM_SANDBOX_FAULT_*
    error_http_status: int | None = setting("SANDBOX_ERROR_HTTP_STATUS", _status, default=None)
    permit_type: str = setting("SANDBOX_PERMIT_TYPE", _text, default="temp")
    display_timezone: str = setting("SANDBOX_TIMEZONE", _timezone, default="UTC")
    now: datetime | None = setting("SANDBOX_NOW", _now, default=None)
    login_sources: tuple[str, ...] = setting("SANDBOX_LOGIN_SOURCES", _sources, default=("OPSCOM",))
    journal_size: int = setting("SANDBOX_JOURNAL_SIZE", parse_positive_int, default=10_000)
    seed_examples: bool = setting("SANDBOX_SEED_EXAMPLES", parse_flag, default=True)

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
        """Read the variables above; ``SettingsError`` names every bad one, in one line."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, object] = {}
        try:
            values.update(read_env(cls, env))
        except SettingsError as exc:
            problems.append(str(exc))
        try:
            values["faults"] = FaultConfig.from_env(env)
        except SettingsError as exc:
            problems.append(str(exc))
        if problems:
            raise SettingsError("; ".join(problems))
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:  # e.g. a client code of blanks
            raise SettingsError(f"invalid sandbox settings: {exc}") from None
