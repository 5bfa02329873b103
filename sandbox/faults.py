"""Fault injection for the sandbox: latency, failures, hangs, chosen error codes, HTML pages.

A :class:`FaultConfig` is plain data (from the environment at start, or from
``PUT /_sandbox/faults``); a :class:`FaultInjector` turns it into one
:class:`Decision` per Controller call. Only ``/api/`` calls are subject to faults.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from http import HTTPStatus
from typing import Any

from foundation.settings import SettingsError
from schemas.controller import ENDPOINTS, ERROR_MESSAGES, ContractError, Endpoint

ENV_PREFIX = "PARKSTREAM_SANDBOX_FAULT_"
RETRY_AFTER_STATUSES = frozenset({429, 503})
DEFAULT_FAILURE_STATUS = 503
DEFAULT_HTML_STATUS = 200  # a maintenance page served with 200, as many proxies do
FAILURE_BODIES = ("json", "html")

MAINTENANCE_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body>
<h1>We&rsquo;ll be back soon</h1>
<p>OPS-COM is down for scheduled maintenance. Please try again later.</p>
</body>
</html>
"""

ERROR_PAGE = """<html>
<head><title>{status} {phrase}</title></head>
<body>
<center><h1>{status} {phrase}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


@dataclass(frozen=True)
class FaultConfig:
    """The fault switches; all off by default.

    latency_ms + uniform(0, jitter_ms) delays every matching call (asyncio.sleep).
    Each matching call hangs with probability ``hang_rate`` (never answered until the
    client gives up). Otherwise the next ``fail_next`` calls fail, then each fails with
    probability ``failure_rate``: with ``failure_error_code`` the answer is that
    documented error (status from the contract unless ``failure_status`` is set), else
    ``failure_status`` (default 503) with ``{"message": reason}``. 429 and 503 carry
    ``Retry-After: retry_after_s``. ``endpoints`` limits faults to those endpoint names
    (empty: all). ``after_apply`` applies the call's effect first and then hangs or
    fails, like a Controller that committed but whose answer was lost.
    ``failure_body="html"`` makes a failure an HTML page (``text/html``) instead of
    JSON, as a proxy, firewall or maintenance mode in front of the Controller answers:
    a maintenance page with ``failure_status`` 200 (the default for html), an
    nginx-style error page with any other status. It cannot be combined with
    ``failure_error_code``.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    failure_rate: float = 0.0
    fail_next: int = 0
    failure_status: int | None = None
    failure_error_code: int | None = None
    retry_after_s: int = 1
    hang_rate: float = 0.0
    endpoints: tuple[str, ...] = ()
    after_apply: bool = False
    failure_body: str = "json"
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every invalid switch, one message each."""
        found: list[str] = []
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                found.append(f"{name} must be a finite number >= 0")
        for name in ("failure_rate", "hang_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                found.append(f"{name} must be between 0 and 1")
        if self.fail_next < 0:
            found.append("fail_next must be >= 0")
        if self.failure_status is not None and not 200 <= self.failure_status <= 599:
            found.append("failure_status must be an HTTP status 200-599")
        if self.failure_body not in FAILURE_BODIES:
            found.append(f"failure_body must be one of {', '.join(FAILURE_BODIES)}")
        elif self.failure_body == "html" and self.failure_error_code is not None:
            found.append("failure_body html and failure_error_code exclude each other")
        if self.failure_error_code is not None and self.failure_error_code not in ERROR_MESSAGES:
            found.append("failure_error_code must be a documented code 9000-9034")
        if self.retry_after_s < 0:
            found.append("retry_after_s must be >= 0")
        unknown = [name for name in self.endpoints if name not in ENDPOINTS]
        if unknown:
            found.append(f"endpoints names unknown endpoints {unknown}; known: {sorted(ENDPOINTS)}")
        return found

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.failure_rate
            or self.fail_next
            or self.hang_rate
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoints"] = list(self.endpoints)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build from JSON-like data over ``base`` (defaults); ValueError names each problem."""
        if not isinstance(data, Mapping):
            raise ValueError("fault switches must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        problems = [f"unknown fault switch {key!r}" for key in data if key not in known]
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                continue
            try:
                values[key] = _coerce(key, raw)
            except (TypeError, ValueError) as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return replace(base or cls(), **values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FaultConfig:
        """Read ``PARKSTREAM_SANDBOX_FAULT_<SWITCH>`` (e.g. ``..._LATENCY_MS=50``).

        ``SettingsError``: one line naming every bad variable.
        """
        data: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            variable = ENV_PREFIX + f.name.upper()
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            value = _from_text(f.name, raw.strip())
            try:
                cls.from_mapping({f.name: value})
            except ValueError as exc:
                problems.append(f"{variable}={raw!r}: {str(exc).removeprefix(f'{f.name}: ')}")
            data[f.name] = value
        if problems:
            raise SettingsError("; ".join(problems))
        try:
            return cls.from_mapping(data)
        except ValueError as exc:  # switches that are fine alone but not together
            raise SettingsError(f"{ENV_PREFIX}*: {exc}") from None


_FLOATS = {"latency_ms", "jitter_ms", "failure_rate", "hang_rate"}
_INTS = {"fail_next", "retry_after_s"}
_OPTIONAL_INTS = {"failure_status", "failure_error_code", "seed"}


def _coerce(key: str, raw: Any) -> Any:
    if key in _FLOATS:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TypeError("must be a number")
        return float(raw)
    if key in _INTS or key in _OPTIONAL_INTS:
        if raw is None and key in _OPTIONAL_INTS:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError("must be an integer")
        return raw
    if key == "after_apply":
        if not isinstance(raw, bool):
            raise TypeError("must be true or false")
        return raw
    if key == "failure_body":
        if not isinstance(raw, str):
            raise TypeError(f"must be one of {', '.join(FAILURE_BODIES)}")
        return raw.strip().lower()
    if key == "endpoints":
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
            raise TypeError("must be a list of endpoint names")
        return tuple(raw)
    raise AssertionError(key)  # pragma: no cover - keys come from fields()


def _from_text(key: str, raw: str) -> Any:
    """Environment text -> the JSON-like value ``_coerce`` expects."""
    if key in ("endpoints", "failure_body"):
        return raw
    if key == "after_apply":
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return raw
    try:
        return int(raw) if key not in _FLOATS else float(raw)
    except ValueError:
        return raw  # _coerce reports it with the switch's name


@dataclass(frozen=True)
class Decision:
    """What happens to one call."""

    delay_s: float = 0.0
    hang: bool = False
    fail: bool = False
    after_apply: bool = False

    @property
    def fault(self) -> str | None:
        if self.hang:
            return "hang"
        if self.fail:
            return "failure"
        if self.delay_s:
            return "latency"
        return None


NO_FAULT = Decision()


@dataclass(frozen=True)
class FailureAnswer:
    """A failure's answer: a JSON ``body``, or ``html`` text (then ``body`` is None)."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]
    error_code: int | None
    html: str | None = None


class FaultInjector:
    """Holds the current FaultConfig and decides each call's fate."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.set(config or FaultConfig())

    def set(self, config: FaultConfig) -> None:
        self.config = config
        self.remaining_fail_next = config.fail_next
        self._rng = random.Random(config.seed)

    def snapshot(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "remaining_fail_next": self.remaining_fail_next}

    def decide(self, endpoint: str) -> Decision:
        config = self.config
        if not config.active or (config.endpoints and endpoint not in config.endpoints):
            return NO_FAULT
        delay_ms = config.latency_ms
        if config.jitter_ms:
            delay_ms += self._rng.uniform(0.0, config.jitter_ms)
        hang = config.hang_rate > 0 and self._rng.random() < config.hang_rate
        fail = False
        if not hang:
            if self.remaining_fail_next > 0:
                self.remaining_fail_next -= 1
                fail = True
            elif config.failure_rate > 0:
                fail = self._rng.random() < config.failure_rate
        return Decision(
            delay_s=delay_ms / 1000.0, hang=hang, fail=fail, after_apply=config.after_apply
        )

    def failure_answer(self, endpoint: Endpoint | None) -> FailureAnswer:
        config = self.config
        error_code = config.failure_error_code
        if config.failure_body == "html":
            status = config.failure_status or DEFAULT_HTML_STATUS
            phrase = HTTPStatus(status).phrase if _known(status) else "Error"
            page = MAINTENANCE_PAGE if 200 <= status < 300 else ERROR_PAGE
            return FailureAnswer(
                status=status,
                body=None,
                headers=_retry_after(status, config.retry_after_s),
                error_code=None,
                html=page.format(status=status, phrase=phrase),
            )
        if error_code is not None:
            error = ContractError(error_code, detail="injected fault")
            status = config.failure_status or error.http_status
            body = endpoint.error_body(error) if endpoint is not None else error.body()
        else:
            status = config.failure_status or DEFAULT_FAILURE_STATUS
            body = {"message": HTTPStatus(status).phrase if _known(status) else "Error"}
        return FailureAnswer(
            status=status,
            body=body,
            headers=_retry_after(status, config.retry_after_s),
            error_code=error_code,
        )


def _retry_after(status: int, seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)} if status in RETRY_AFTER_STATUSES else {}


def _known(status: int) -> bool:
    try:
        HTTPStatus(status)
    except ValueError:
        return False
    return True
