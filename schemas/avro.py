"""The Avro codec for every parkstream topic.

Records are framed with Avro *single-object encoding*: the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's canonical form, then the Avro binary body. A reader therefore needs no
registry: it finds the writer schema by fingerprint among the schemas it knows
(the current ones in this folder and older versions in ``history/``) and
resolves the record to the current schema.

Money is ``decimal`` (bytes, scale 2) and comes back as ``decimal.Decimal``;
times are ``timestamp-millis`` and come back as UTC ``datetime``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).parent
MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8

# Record name -> file, one per topic value (see DESIGN.md "Topics and keys").
SCHEMA_FILES = {
    "ParkingSessionEvent": "parking_session_event.avsc",
    "ControllerCommand": "controller_command.avsc",
    "ControllerResult": "controller_result.avsc",
    "DeadLetter": "dead_letter.avsc",
}


class DecodeError(ValueError):
    """The bytes are not a parkstream Avro record: bad marker, unknown schema, or corrupt body."""


@dataclass(frozen=True)
class _Schema:
    name: str
    parsed: Any
    fingerprint: bytes


def _load(path: Path) -> _Schema:
    raw = json.loads(path.read_text())
    parsed = parse_schema(raw, _write_hint=False)
    canonical = to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    # The spec writes the fingerprint little-endian; fastavro's hex is big-endian.
    return _Schema(name=raw["name"], parsed=parsed, fingerprint=fp[::-1])


class AvroCodec:
    """Encodes and decodes parkstream records by record name; safe to share."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self._current: dict[str, _Schema] = {
            name: _load(schema_dir / file) for name, file in SCHEMA_FILES.items()
        }
        self._by_fingerprint: dict[bytes, _Schema] = {
            s.fingerprint: s for s in self._current.values()
        }
        history = schema_dir / "history"
        if history.is_dir():
            for path in sorted(history.glob("*.avsc")):
                old = _load(path)
                self._by_fingerprint.setdefault(old.fingerprint, old)

    def schema(self, name: str) -> Any:
        """The current parsed schema of record ``name``."""
        return self._current[name].parsed

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Single-object encoding of ``record`` with the current schema ``name``.

        Raises ``ValueError`` when the record does not fit the schema.
        """
        schema = self._current[name]
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
        return buf.getvalue()

    def decode(self, data: bytes, expected: str | None = None) -> tuple[str, dict[str, Any]]:
        """``(record name, record)`` read into the current version of its schema.

        Raises ``DecodeError`` for anything that is not such a record, or is a
        record of another type than ``expected``.
        """
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoded (missing C3 01 marker)")
        writer = self._by_fingerprint.get(data[2:HEADER_LEN])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {data[2:HEADER_LEN].hex()}")
        if expected is not None and writer.name != expected:
            raise DecodeError(f"expected a {expected}, got a {writer.name}")
        reader = self._current[writer.name]
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(data[HEADER_LEN:]), writer.parsed, reader.parsed
            )
        except Exception as exc:  # fastavro raises several types for corrupt bodies
            raise DecodeError(f"corrupt {writer.name} body: {exc}") from exc
        if not isinstance(record, dict):
            raise DecodeError(f"corrupt {writer.name} body")
        return writer.name, record


_default: AvroCodec | None = None


def codec() -> AvroCodec:
    """The process-wide codec (schemas are read once)."""
    global _default
    if _default is None:
        _default = AvroCodec()
    return _default
