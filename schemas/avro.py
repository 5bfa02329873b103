"""The Avro codec for every parkstream topic.

Two framings, one codec::

    single-object (default)   C3 01 | 8-byte CRC-64-AVRO fingerprint (little-endian) | body
    Confluent wire format     00 | 4-byte schema id (big-endian) | body
                              (with a Schema Registry: PARKSTREAM_SCHEMA_REGISTRY_URL)

``encode`` writes the framing the codec was built for; ``decode`` reads both, by
the first byte, so a topic may hold records of either while a deployment moves
from one to the other. Single-object records need no registry: the reader finds
the writer schema by fingerprint among the schemas it knows (the current ones in
this folder and older versions in ``history/``). Confluent records name their
writer schema by registry id; it is fetched once per id. Either way the record is
resolved to the *current* schema of its name (Avro schema resolution), so a
record written by an older version reads with the newer fields' defaults.

With a registry, schemas are registered under their full record name
(``io.parkstream.v1.ParkingSessionEvent``: the record-name subject strategy),
through ``confluent_kafka.schema_registry``. ``mock://<name>`` URLs give the
library's in-memory registry (tests); one client per URL per process.

Money is ``decimal`` (bytes, scale 2) and comes back as ``decimal.Decimal``;
times are ``timestamp-millis`` and come back as UTC ``datetime``.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).parent
MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = len(CONFLUENT_MAGIC) + 4

# Record name -> file, one per topic value (see DESIGN.md "Topics and keys").
SCHEMA_FILES = {
    "ParkingSessionEvent": "parking_session_event.avsc",
    "ControllerCommand": "controller_command.avsc",
    "ControllerResult": "controller_result.avsc",
    "DeadLetter": "dead_letter.avsc",
    "VehicleEvent": "vehicle_event.avsc",
    "UserEvent": "user_event.avsc",
}


class DecodeError(ValueError):
    """The bytes are not a parkstream Avro record: bad marker, unknown schema, or corrupt body."""


class RegistryUnavailable(RuntimeError):
    """The Schema Registry did not answer (or refused a schema): nothing was encoded/decoded.

    Transient for a caller: retry later, as for a broker outage.
    """


@dataclass(frozen=True)
class _Schema:
    name: str
    parsed: Any
    fingerprint: bytes
    text: str


def _parse(raw: dict[str, Any]) -> _Schema:
    # Parsed once, with fastavro's "parsed" mark: without it, fastavro parses the schema
    # again in every schemaless_writer/reader call (about half of an encode's or a decode's
    # CPU; BENCHMARKS.md, "What issue 15's directions gave").
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    # The spec writes the fingerprint little-endian; fastavro's hex is big-endian.
    return _Schema(name=raw["name"], parsed=parsed, fingerprint=fp[::-1], text=json.dumps(raw))


def _load(path: Path) -> _Schema:
    return _parse(json.loads(path.read_text()))


class _Registry:
    """The Confluent side: one ``SchemaRegistryClient``, one serializer per record name."""

    def __init__(self, url: str, schemas: dict[str, _Schema]) -> None:
        from confluent_kafka.schema_registry import (
            SchemaRegistryClient,
            record_subject_name_strategy,
        )
        from confluent_kafka.schema_registry.avro import AvroSerializer

        self.url = url
        # new_client: mock:// URLs get the library's in-memory registry.
        self.client = SchemaRegistryClient.new_client({"url": url})
        self._serializers = {
            name: AvroSerializer(
                self.client,
                schema.text,
                conf={
                    "auto.register.schemas": True,
                    "subject.name.strategy": record_subject_name_strategy,
                },
            )
            for name, schema in schemas.items()
        }
        self._writers: dict[int, _Schema] = {}
        self._lock = threading.Lock()

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        from confluent_kafka.schema_registry.error import SchemaRegistryError
        from confluent_kafka.serialization import MessageField, SerializationContext

        try:
            data = self._serializers[name](record, SerializationContext(name, MessageField.VALUE))
        except SchemaRegistryError as exc:
            raise RegistryUnavailable(f"registry refused or failed: {exc}") from exc
        except Exception as exc:
            # Transport errors surface as httpx/OS errors; a bad record as ValueError/TypeError.
            if isinstance(exc, ValueError | TypeError | KeyError | AttributeError):
                raise ValueError(f"{name} does not fit its schema: {exc}") from exc
            raise RegistryUnavailable(f"registry unreachable: {exc}") from exc
        assert isinstance(data, bytes)
        return data

    def writer(self, schema_id: int) -> _Schema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        with self._lock:
            known = self._writers.get(schema_id)
        if known is not None:
            return known
        try:
            schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryUnavailable(f"registry refused or failed: {exc}") from exc
        except Exception as exc:
            raise RegistryUnavailable(f"registry unreachable: {exc}") from exc
        if schema.schema_type not in (None, "AVRO") or schema.schema_str is None:
            raise DecodeError(f"schema id {schema_id} is {schema.schema_type}, not Avro")
        try:
            writer = _parse(json.loads(schema.schema_str))
        except Exception as exc:
            raise DecodeError(f"schema id {schema_id} is not an Avro record schema") from exc
        with self._lock:
            self._writers[schema_id] = writer
        return writer


class AvroCodec:
    """Encodes and decodes parkstream records by record name; safe to share.

    ``registry_url`` set: ``encode`` writes the Confluent wire format through that
    registry. Unset: single-object encoding. ``decode`` reads both (Confluent records
    only when a registry is configured).
    """

    def __init__(self, schema_dir: Path = SCHEMA_DIR, registry_url: str | None = None) -> None:
        self._current: dict[str, _Schema] = {
            name: _load(schema_dir / file) for name, file in SCHEMA_FILES.items()
        }
        self._registry = _Registry(registry_url, self._current) if registry_url else None
        self._by_fingerprint: dict[bytes, _Schema] = {
            s.fingerprint: s for s in self._current.values()
        }
        history = schema_dir / "history"
        if history.is_dir():
            for path in sorted(history.glob("*.avsc")):
                old = _load(path)
                self._by_fingerprint.setdefault(old.fingerprint, old)

    @property
    def framing(self) -> str:
        """``"confluent"`` with a registry, else ``"single-object"``."""
        return "confluent" if self._registry is not None else "single-object"

    def schema(self, name: str) -> Any:
        """The current parsed schema of record ``name``."""
        return self._current[name].parsed

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """``record`` written with the current schema ``name``, in this codec's framing.

        Raises ``ValueError`` when the record does not fit the schema and
        ``RegistryUnavailable`` when the registry cannot be reached.
        """
        if self._registry is not None:
            return self._registry.encode(name, record)
        schema = self._current[name]
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
        return buf.getvalue()

    def decode(self, data: bytes | None, expected: str | None = None) -> tuple[str, dict[str, Any]]:
        """``(record name, record)`` read into the current version of its schema.

        Raises ``DecodeError`` for anything that is not such a record (a record with no
        value, a tombstone, included), or is a record of another type than ``expected``;
        ``RegistryUnavailable`` when a Confluent record's schema cannot be fetched now.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("no value (a tombstone): not a parkstream record")
        data = bytes(data)
        if len(data) >= CONFLUENT_HEADER_LEN and data[:1] == CONFLUENT_MAGIC:
            if self._registry is None:
                raise DecodeError(
                    "Confluent wire format record, but no schema registry is configured"
                )
            writer = self._registry.writer(int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big"))
            body = data[CONFLUENT_HEADER_LEN:]
        elif len(data) >= HEADER_LEN and data[:2] == MAGIC:
            found = self._by_fingerprint.get(data[2:HEADER_LEN])
            if found is None:
                raise DecodeError(f"unknown schema fingerprint {data[2:HEADER_LEN].hex()}")
            writer, body = found, data[HEADER_LEN:]
        else:
            raise DecodeError("not a parkstream Avro record (no C3 01 or 00 marker)")
        if writer.name not in self._current:
            raise DecodeError(f"not a parkstream record: {writer.name}")
        if expected is not None and writer.name != expected:
            raise DecodeError(f"expected a {expected}, got a {writer.name}")
        reader = self._current[writer.name]
        # Written with the current schema (the common case): no schema resolution to do.
        resolve = None if reader is writer else reader.parsed
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), writer.parsed, resolve)
        except Exception as exc:  # fastavro raises several types for corrupt bodies
            raise DecodeError(f"corrupt {writer.name} body: {exc}") from exc
        if not isinstance(record, dict):
            raise DecodeError(f"corrupt {writer.name} body")
        return writer.name, record


_codecs: dict[str, AvroCodec] = {}
_default_url = ""
_codecs_lock = threading.Lock()


def configure(registry_url: str | None) -> AvroCodec:
    """Make ``codec()`` write through ``registry_url`` (empty or None: single-object).

    Each process calls it once at start with ``PARKSTREAM_SCHEMA_REGISTRY_URL``.
    """
    global _default_url
    _default_url = registry_url or ""
    return codec()


def codec(registry_url: str | None = None) -> AvroCodec:
    """The process-wide codec for ``registry_url`` (None: the configured one).

    Schemas are read once, and one registry client is kept per URL.
    """
    url = _default_url if registry_url is None else registry_url
    with _codecs_lock:
        found = _codecs.get(url)
        if found is None:
            found = _codecs[url] = AvroCodec(registry_url=url or None)
    return found
