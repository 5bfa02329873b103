"""Settings: one typed object read from ``PARKSTREAM_*`` environment variables.

Every variable, its default and meaning is listed in README.md. A bad value stops
the process at start with one line naming the variable (``SettingsError``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "PARKSTREAM_"

# The reference-id secret used when PARKSTREAM_REFERENCE_SECRET is not set: public, so
# ids made with it prove nothing. Fine on one machine; the gateway warns at start.
DEV_REFERENCE_SECRET = "parkstream-dev-only-reference-secret"
MIN_REFERENCE_SECRET_LENGTH = 16
# The circuit breaker's longest cooldown between probes (consumers.retry.CircuitBreaker).
MAX_CIRCUIT_COOLDOWN_SECONDS = 30.0
# A drain allows one Controller call plus this for writing its outcome.
DRAIN_MARGIN_SECONDS = 5.0


class SettingsError(ValueError):
    """A ``PARKSTREAM_*`` variable has a value parkstream cannot use."""


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port, 1-65535")
    return value


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number above 0")
    return value


def _days_at_least_one(raw: str) -> float:
    value = float(raw)
    if not value >= 1:
        raise ValueError("must be a number of days, at least 1")
    return value


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


def _bootstrap(raw: str) -> str:
    for server in raw.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host:
            raise ValueError("must be host:port[,host:port...]")
        _port(port)
    return raw


def _vendor_tokens(raw: str) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, token = item.partition("=")
        if not sep or not name.strip() or not token.strip():
            # Never echo the value: it holds secrets.
            raise ValueError("must be name=token[,name=token...] (value not shown)")
        if name.strip() in tokens:
            raise ValueError(f"names vendor {name.strip()!r} twice")
        tokens[name.strip()] = token.strip()
    return tokens


def _entries_text(text: str) -> str:
    """A file of entries, one a line (blank and ``#`` lines skipped), as one comma-separated
    value, the form the variable takes."""
    lines = (line.strip() for line in text.splitlines())
    return ",".join(line for line in lines if line and not line.startswith("#"))


def _entries_file(parse: Callable[[str], object]) -> Callable[[str], Path]:
    """The parser of a variable naming a file of ``parse`` entries: a file that cannot be
    read or holds a malformed entry is refused at start, not at the first request."""

    def checked(raw: str) -> Path:
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the file ({exc.strerror or exc})") from None
        parse(_entries_text(text))
        return path

    return checked


def _vendor_grants(raw: str) -> dict[str, tuple[str, ...]]:
    """``name=endpoint[+endpoint...]`` entries, comma-separated; names and endpoints are checked
    against the vendors and the pass-through endpoints by the gateway, which knows both."""
    grants: dict[str, tuple[str, ...]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, listed = item.partition("=")
        endpoints = tuple(e.strip() for e in listed.split("+")) if listed.strip() else ()
        if not sep or not name.strip() or not all(endpoints):
            raise ValueError("must be name=endpoint[+endpoint...][,name=...]")
        if name.strip() in grants:
            raise ValueError(f"names vendor {name.strip()!r} twice")
        grants[name.strip()] = endpoints
    return grants


def _reference_secret(raw: str) -> str:
    if len(raw) < MIN_REFERENCE_SECRET_LENGTH:
        raise ValueError(
            f"must be at least {MIN_REFERENCE_SECRET_LENGTH} characters (value not shown)"
        )
    return raw


def _registry_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https", "mock") or not parts.netloc:
        raise ValueError("must be an http://, https:// or (tests) mock:// URL")
    return raw.rstrip("/")


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError("must name a readable file")
    return path


def _timezone(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as UTC or America/Toronto") from None
    return raw


def _currency(raw: str) -> str:
    # The contract's currency rule, so the default is one any permit could carry.
    from schemas.controller import CURRENCY_MAX_LENGTH, ContractError, normalize_currency

    try:
        value = normalize_currency(raw)
    except ContractError:
        value = None
    if value is None:
        raise ValueError(
            f"must be a currency code of 1 to {CURRENCY_MAX_LENGTH} characters "
            "(the Controller's CurrencyID limit), such as CAD or USD"
        )
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def parse_flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _level(raw: str) -> str:
    return _choice("debug", "info", "warning", "error")(raw).upper()


def setting(
    name: str, parse: Callable[[str], Any] = str, *, secret: bool = False, **kw: Any
) -> Any:
    """A dataclass field read from ``PARKSTREAM_<name>`` by ``read_env``.

    ``parse`` turns the variable's text into the value or raises ``ValueError`` saying
    what the value must be; a ``secret`` value is never echoed in an error or a repr.
    The sandbox's settings are declared the same way (``sandbox.config``).
    """
    return field(metadata={"env": name, "parse": parse, "secret": secret}, **kw)


def _secret(name: str, parse: Callable[[str], Any] = str, **kw: Any) -> Any:
    return setting(name, parse, secret=True, **kw)


_env = setting


def read_env(cls: type, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values of ``cls``'s ``setting`` fields whose variables are set (not empty).

    Raises ``SettingsError``: one line naming every bad variable and what it must be.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(cls):
        if "env" not in f.metadata:
            continue
        var = PREFIX + f.metadata["env"]
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            shown = "" if f.metadata["secret"] else f"={raw!r}"
            problems.append(f"{var}{shown}: {exc}")
    if problems:
        raise SettingsError("; ".join(problems))
    return values


@dataclass(frozen=True)
class Settings:
    """Everything a parkstream process can be told from outside."""

    kafka_bootstrap_servers: str = _env(
        "KAFKA_BOOTSTRAP_SERVERS", _bootstrap, default="127.0.0.1:9092"
    )
    topic_prefix: str = _env("TOPIC_PREFIX", default="")
    topic_partitions: int = _env("TOPIC_PARTITIONS", parse_positive_int, default=6)
    topic_replication_factor: int = _env("TOPIC_REPLICATION_FACTOR", parse_positive_int, default=3)
    topic_min_insync_replicas: int = _env(
        "TOPIC_MIN_INSYNC_REPLICAS", parse_positive_int, default=2
    )
    data_dir: Path = _env("DATA_DIR", Path, default=Path("parkstream-data"))
    controller_url: str = _env("CONTROLLER_URL", _http_url, default="http://127.0.0.1:8081")
    controller_client: str = _env("CONTROLLER_CLIENT", default="OC-TOMA")
    controller_api_token: str = _secret("CONTROLLER_API_TOKEN", default="")
    controller_timeout: float = _env("CONTROLLER_TIMEOUT_SECONDS", _positive_float, default=10.0)
    controller_concurrency: int = _env("CONTROLLER_CONCURRENCY", parse_positive_int, default=32)
    controller_timezone: str = _env("CONTROLLER_TIMEZONE", _timezone, default="UTC")
    reconcile_by_permit_no: bool = _env("RECONCILE_BY_PERMIT_NO", parse_flag, default=False)
    worker_stall_seconds: float = _env("WORKER_STALL_SECONDS", _positive_float, default=120.0)
    dedupe_window: float = _env("DEDUPE_WINDOW", _positive_float, default=600.0)
    journal_retention_days: float = _env("JOURNAL_RETENTION_DAYS", _days_at_least_one, default=30.0)
    session_retention_days: float = _env("SESSION_RETENTION_DAYS", _days_at_least_one, default=35.0)
    table_store: str = _env("TABLE_STORE", _choice("rocksdb", "memory"), default="rocksdb")
    zone_aliases: Path | None = _env("ZONE_ALIASES", _existing_file, default=None)
    default_currency: str = _env("DEFAULT_CURRENCY", _currency, default="CAD")
    default_province: str = _env("DEFAULT_PROVINCE", default="")
    default_plate_type: str = _env("DEFAULT_PLATE_TYPE", default="")
    user_types_refresh: float = _env("USER_TYPES_REFRESH_SECONDS", _positive_float, default=300.0)
    vendor_tokens: dict[str, str] = _secret("VENDOR_TOKENS", _vendor_tokens, default_factory=dict)
    vendor_tokens_file: Path | None = _env(
        "VENDOR_TOKENS_FILE", _entries_file(_vendor_tokens), default=None
    )
    vendor_grants: dict[str, tuple[str, ...]] = _env(
        "VENDOR_GRANTS", _vendor_grants, default_factory=dict
    )
    vendor_grants_file: Path | None = _env(
        "VENDOR_GRANTS_FILE", _entries_file(_vendor_grants), default=None
    )
    reference_secret: str = _secret(
        "REFERENCE_SECRET", _reference_secret, default=DEV_REFERENCE_SECRET
    )
    gateway_max_body_bytes: int = _env("GATEWAY_MAX_BODY_BYTES", parse_positive_int, default=65536)
    gateway_read_timeout: float = _env(
        "GATEWAY_READ_TIMEOUT_SECONDS", _positive_float, default=30.0
    )
    worker_url: str = _env("WORKER_URL", _http_url, default="http://127.0.0.1:6066")
    schema_registry_url: str = _env("SCHEMA_REGISTRY_URL", _registry_url, default="")
    producer_batch_messages: int = _env(
        "PRODUCER_BATCH_MESSAGES", parse_positive_int, default=10000
    )
    gateway_host: str = _env("GATEWAY_HOST", default="0.0.0.0")
    gateway_port: int = _env("GATEWAY_PORT", _port, default=8080)
    gateway_ops_port: int = _env("GATEWAY_OPS_PORT", _port, default=8082)
    sandbox_port: int = _env("SANDBOX_PORT", _port, default=8081)
    worker_web_port: int = _env("WORKER_WEB_PORT", _port, default=6066)
    log_level: str = _env("LOG_LEVEL", _level, default="INFO")
    log_format: str = _env("LOG_FORMAT", _choice("text", "json"), default="text")

    def __post_init__(self) -> None:
        self.vendors  # noqa: B018  (a name in both the variable and the file stops the start)
        self.grants  # noqa: B018  (likewise)
        if self.gateway_ops_port == self.gateway_port:
            raise SettingsError(
                f"{PREFIX}GATEWAY_OPS_PORT={self.gateway_ops_port}: must differ from "
                f"{PREFIX}GATEWAY_PORT (metrics and readiness are never on the vendors' port)"
            )
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise SettingsError(
                f"{PREFIX}TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync_replicas}: must not "
                f"exceed {PREFIX}TOPIC_REPLICATION_FACTOR={self.topic_replication_factor} "
                "(no write could be acknowledged)"
            )
        # An outage still probes the Controller at least this often: the watchdog must wait longer.
        quietest = self.controller_timeout + MAX_CIRCUIT_COOLDOWN_SECONDS
        if self.worker_stall_seconds <= quietest:
            raise SettingsError(
                f"{PREFIX}WORKER_STALL_SECONDS={self.worker_stall_seconds:g}: must exceed "
                f"{PREFIX}CONTROLLER_TIMEOUT_SECONDS plus the circuit's longest cooldown "
                f"({quietest:g} s), the longest quiet time of a healthy worker in an outage"
            )

    @property
    def drain_seconds(self) -> float:
        """How long a revocation or a stop waits for work under way (``foundation.worker.ownership``):
        one Controller call and the writes of its outcome."""
        return self.controller_timeout + DRAIN_MARGIN_SECONDS

    @property
    def vendors(self) -> dict[str, str]:
        """Vendor name -> token, from ``PARKSTREAM_VENDOR_TOKENS`` and the tokens file."""
        merged = dict(self.vendor_tokens)
        if self.vendor_tokens_file is not None:
            try:
                from_file = _vendor_tokens(
                    _entries_text(self.vendor_tokens_file.read_text("utf-8"))
                )
            except (OSError, ValueError) as exc:
                raise SettingsError(f"{PREFIX}VENDOR_TOKENS_FILE: {exc}") from None
            for name, token in from_file.items():
                if name in merged:
                    raise SettingsError(
                        f"{PREFIX}VENDOR_TOKENS_FILE: names vendor {name!r} that "
                        f"{PREFIX}VENDOR_TOKENS names too"
                    )
                merged[name] = token
        return merged

    def grant_sources(self) -> list[tuple[str, dict[str, tuple[str, ...]]]]:
        """``(variable, vendor -> endpoints)`` of ``PARKSTREAM_VENDOR_GRANTS`` and its file."""
        sources = [(f"{PREFIX}VENDOR_GRANTS", dict(self.vendor_grants))]
        if self.vendor_grants_file is not None:
            variable = f"{PREFIX}VENDOR_GRANTS_FILE"
            try:
                text = self.vendor_grants_file.read_text("utf-8")
                sources.append((variable, _vendor_grants(_entries_text(text))))
            except (OSError, ValueError) as exc:
                raise SettingsError(f"{variable}: {exc}") from None
        return sources

    @property
    def grants(self) -> dict[str, tuple[str, ...]]:
        """Vendor name -> the pass-through endpoints granted to it, from the variable and file."""
        merged: dict[str, tuple[str, ...]] = {}
        for variable, grants in self.grant_sources():
            for name, endpoints in grants.items():
                if name in merged:
                    raise SettingsError(
                        f"{variable}: names vendor {name!r} that {PREFIX}VENDOR_GRANTS names too"
                    )
                merged[name] = endpoints
        return merged

    @property
    def uses_dev_reference_secret(self) -> bool:
        """True while reference ids are signed with the public development secret."""
        return self.reference_secret == DEV_REFERENCE_SECRET

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``PARKSTREAM_*`` variable; raise ``SettingsError``."""
        return cls(**read_env(cls, environ))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.metadata['secret'] else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    def topic(self, name: str) -> str:
        """Full topic name: ``topic("sessions")`` -> ``<prefix>parkstream.sessions.v1``."""
        return f"{self.topic_prefix}parkstream.{name}.v1"

    @property
    def app_id(self) -> str:
        """Faust application id: the consumer group and the table changelog prefix."""
        return f"{self.topic_prefix}parkstream-worker"


TOPICS = ("sessions", "vehicles", "users", "commands", "results", "dlq")


def env_documentation() -> list[tuple[str, str]]:
    """``(variable, default)`` for every setting, in declaration order (for the README test)."""
    out = []
    for f in fields(Settings):
        default = "" if f.default in (MISSING, None) else str(f.default)
        out.append((PREFIX + f.metadata["env"], default))
    return out
