"""Sandbox storage: permits, vehicles, profiles, violations and plate notes in SQLite.

One code path for both modes: ``":memory:"`` when no file is given (lost on exit), a
file otherwise (survives a restart). All calls run on the event loop thread; each is
short, and running them there makes every check-then-write atomic between requests.
Times are stored as UTC ``YYYY-MM-DDTHH:MM:SS`` text, which sorts like time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS permits (
    reference_id TEXT PRIMARY KEY,
    plate TEXT NOT NULL,
    plate_norm TEXT NOT NULL,
    zone TEXT,
    permit_no TEXT,
    promo_code TEXT,
    amount TEXT,
    currency TEXT,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    permit_type TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS permits_plate ON permits (plate_norm);
CREATE INDEX IF NOT EXISTS permits_ticket ON permits (permit_no);
CREATE TABLE IF NOT EXISTS vehicles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plate TEXT NOT NULL,
    plate_norm TEXT NOT NULL,
    plate_type_id TEXT NOT NULL,
    prov_id TEXT NOT NULL,
    vin TEXT,
    data TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS vehicles_identity ON vehicles (plate_norm, prov_id);
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unique_id TEXT NOT NULL UNIQUE,
    email_norm TEXT,
    user_name_norm TEXT,
    data TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS violations (
    id INTEGER PRIMARY KEY,
    due TEXT NOT NULL,
    sent_at TEXT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plates (
    plate_norm TEXT PRIMARY KEY,
    alarm TEXT,
    dntt TEXT NOT NULL
);
"""

_TABLES = ("permits", "vehicles", "profiles", "violations", "plates", "meta")


def to_db_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def from_db_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    return [dict(row) for row in cursor.fetchall()]


class Store:
    """The sandbox's records. Methods take and return plain dicts."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    def close(self) -> None:
        self._conn.close()

    def ping(self) -> bool:
        try:
            self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> None:
        """Forget every record (ids restart at 1)."""
        with self._conn:
            for table in _TABLES:
                if table != "meta":
                    self._conn.execute(f"DELETE FROM {table}")
            self._conn.execute("DELETE FROM meta WHERE key != 'schema_version'")
            self._conn.execute("DELETE FROM sqlite_sequence")

    # meta -----------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # permits --------------------------------------------------------------------

    def insert_permit(self, permit: Mapping[str, Any]) -> None:
        columns = ", ".join(permit)
        marks = ", ".join("?" for _ in permit)
        with self._conn:
            self._conn.execute(
                f"INSERT INTO permits ({columns}) VALUES ({marks})",
                tuple(permit.values()),
            )

    def permit(self, reference_id: str) -> dict[str, Any] | None:
        """A live (not deleted) permit, or None."""
        row = self._conn.execute(
            "SELECT * FROM permits WHERE reference_id = ? AND deleted = 0", (reference_id,)
        ).fetchone()
        return None if row is None else dict(row)

    def permit_by_ticket(self, permit_no: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT * FROM permits WHERE permit_no = ? AND deleted = 0", (permit_no,)
        ).fetchone()
        return None if row is None else dict(row)

    def update_permit(self, reference_id: str, changes: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._conn:
            self._conn.execute(
                f"UPDATE permits SET {assignments} WHERE reference_id = ?",
                (*changes.values(), reference_id),
            )

    def permits(self, *, plate_norm: str | None = None) -> list[dict[str, Any]]:
        if plate_norm is None:
            return _rows(self._conn.execute("SELECT * FROM permits ORDER BY rowid"))
        return _rows(
            self._conn.execute(
                "SELECT * FROM permits WHERE plate_norm = ? ORDER BY rowid", (plate_norm,)
            )
        )

    def active_permits(self, plate_norm: str, at: datetime) -> list[dict[str, Any]]:
        """Live permits for a plate whose [start, end] contains ``at``, soonest end first."""
        now = to_db_time(at)
        return _rows(
            self._conn.execute(
                "SELECT * FROM permits WHERE plate_norm = ? AND deleted = 0 "
                "AND start_time <= ? AND end_time >= ? ORDER BY end_time, rowid",
                (plate_norm, now, now),
            )
        )

    def permit_stats(self, zones: Sequence[str] | None) -> list[tuple[str, str | None, int]]:
        """(type, zone, count) of live permits; ``zones`` match case-blind (MySQL collation)."""
        sql = "SELECT permit_type, zone, COUNT(*) AS total FROM permits WHERE deleted = 0"
        params: tuple[str, ...] = ()
        if zones:
            sql += f" AND lower(zone) IN ({', '.join('?' for _ in zones)})"
            params = tuple(z.lower() for z in zones)
        sql += " GROUP BY permit_type, zone ORDER BY zone IS NULL, zone, permit_type"
        return [
            (row["permit_type"], row["zone"], row["total"])
            for row in self._conn.execute(sql, params)
        ]

    # vehicles -------------------------------------------------------------------

    def vehicle(self, plate_norm: str, prov_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT * FROM vehicles WHERE plate_norm = ? AND prov_id = ?", (plate_norm, prov_id)
        ).fetchone()
        return None if row is None else dict(row)

    def insert_vehicle(self, vehicle: Mapping[str, Any], created: datetime) -> int:
        with self._conn:
            cursor = self._conn.execute(
                "INSERT INTO vehicles (plate, plate_norm, plate_type_id, prov_id, vin, data, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    vehicle["plate"],
                    vehicle["plate_norm"],
                    vehicle["plate_type_id"],
                    vehicle["prov_id"],
                    vehicle.get("vin"),
                    json.dumps(dict(vehicle)),
                    to_db_time(created),
                ),
            )
        return int(cursor.lastrowid or 0)

    def vehicles(self) -> list[dict[str, Any]]:
        return [
            {"id": row["id"], "created": row["created"], **json.loads(row["data"])}
            for row in self._conn.execute("SELECT * FROM vehicles ORDER BY id")
        ]

    # profiles -------------------------------------------------------------------

    def profile(self, unique_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT * FROM profiles WHERE unique_id = ?", (unique_id,)
        ).fetchone()
        return None if row is None else dict(row)

    def profile_with(self, column: str, value: str) -> dict[str, Any] | None:
        if column not in ("email_norm", "user_name_norm"):
            raise ValueError(column)
        row = self._conn.execute(
            f"SELECT * FROM profiles WHERE {column} = ?",
            (value,),
        ).fetchone()
        return None if row is None else dict(row)

    def save_profile(
        self,
        unique_id: str,
        data: Mapping[str, Any],
        *,
        email_norm: str | None,
        user_name_norm: str | None,
        at: datetime,
    ) -> int:
        """Insert or replace the profile of ``unique_id``; returns its numeric id."""
        stamp = to_db_time(at)
        with self._conn:
            self._conn.execute(
                "INSERT INTO profiles (unique_id, email_norm, user_name_norm, data, created, "
                "updated) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (unique_id) DO UPDATE SET "
                "email_norm = excluded.email_norm, user_name_norm = excluded.user_name_norm, "
                "data = excluded.data, updated = excluded.updated",
                (unique_id, email_norm, user_name_norm, json.dumps(dict(data)), stamp, stamp),
            )
        row = self._conn.execute(
            "SELECT id FROM profiles WHERE unique_id = ?", (unique_id,)
        ).fetchone()
        return int(row["id"])

    def profiles(self) -> list[dict[str, Any]]:
        return [
            {
                "id": row["id"],
                "unique_id": row["unique_id"],
                "created": row["created"],
                "updated": row["updated"],
                **json.loads(row["data"]),
            }
            for row in self._conn.execute("SELECT * FROM profiles ORDER BY id")
        ]

    # violations -----------------------------------------------------------------

    def next_violation_id(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM violations")
        return int(row.fetchone()["next"])

    def has_violation(self, violation_id: int) -> bool:
        row = self._conn.execute("SELECT 1 FROM violations WHERE id = ?", (violation_id,))
        return row.fetchone() is not None

    def add_violations(self, records: Iterable[tuple[int, datetime, Mapping[str, Any]]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT INTO violations (id, due, sent_at, record) VALUES (?, ?, ?, ?)",
                [
                    (
                        vid,
                        to_db_time(due),
                        record.get("SentToCollections"),
                        json.dumps(dict(record)),
                    )
                    for vid, due, record in records
                ],
            )

    def take_overdue(self, at: datetime, sent_stamp: str) -> list[dict[str, Any]]:
        """Overdue violations not yet sent, as stored; they are marked sent in the same step."""
        now = to_db_time(at)
        with self._conn:
            rows = self._conn.execute(
                "SELECT id, record FROM violations WHERE sent_at IS NULL AND due < ? ORDER BY id",
                (now,),
            ).fetchall()
            records = []
            for row in rows:
                record = json.loads(row["record"])
                records.append(record)
                self._conn.execute(
                    "UPDATE violations SET sent_at = ?, record = ? WHERE id = ?",
                    (
                        sent_stamp,
                        json.dumps({**record, "SentToCollections": sent_stamp}),
                        row["id"],
                    ),
                )
        return records

    def violations(self) -> list[dict[str, Any]]:
        return [
            json.loads(row["record"])
            for row in self._conn.execute("SELECT record FROM violations ORDER BY id")
        ]

    # plate notes (alarm, DNTT) -----------------------------------------------------

    def set_plate_notes(self, plate_norm: str, alarm: str | None, dntt: list[Any]) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO plates (plate_norm, alarm, dntt) VALUES (?, ?, ?) "
                "ON CONFLICT (plate_norm) DO UPDATE SET alarm = excluded.alarm, "
                "dntt = excluded.dntt",
                (plate_norm, alarm, json.dumps(dntt)),
            )

    def plate_notes(self, plate_norm: str) -> tuple[str | None, list[Any]]:
        row = self._conn.execute(
            "SELECT alarm, dntt FROM plates WHERE plate_norm = ?", (plate_norm,)
        ).fetchone()
        if row is None:
            return None, []
        return row["alarm"], json.loads(row["dntt"])

    def counts(self) -> dict[str, int]:
        return {
            table: int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in _TABLES
            if table != "meta"
        }
