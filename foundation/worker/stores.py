"""The worker's table stores: Faust's RocksDB and memory stores, fitted to acknowledged writes.

parkstream writes its tables only through ``durable``: each write is a changelog record
sent to the partition of the record being processed, and the local store is changed
only once Kafka acknowledged it. Faust's own stores assume Faust's own writes, so each
store here adds what those writes need:

* ``apply_acknowledged(tp, offset, key, value)``, called from the acknowledgement's
  callback, so a partition's writes are applied in changelog order. The RocksDB store
  writes the value and the partition's *persisted offset* in one atomic batch: a worker
  killed at any moment restarts with a file that never claims an offset whose write it
  lacks, and its recovery reads only the changelog records after that offset. A write
  acknowledged after its partition was revoked is not applied (the file is closed): the
  partition's next owner, or this worker when it comes back, reads it from the changelog.
* ``partition_items(partition)``: one partition's entries, for retention.
* Reads that never depend on Faust's *current event*: Faust's RocksDB store looks a key
  up in the partition of whatever event is current in the reading task, and parkstream's
  tasks (a key's runner, a tail, a timer) may hold another partition's event. A key
  lives in one partition only (every table is keyed like its topic), so it is looked up
  in the partition that holds it.

The memory store also knows the partition of every key written live (Faust's knows it
only for keys it recovered), so the keys of a partition that moved to another worker
are dropped at the next recovery instead of staying in memory for good.

``PARKSTREAM_TABLE_STORE`` picks one (``store_url``); the worker's default is RocksDB,
under ``PARKSTREAM_DATA_DIR``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol, cast

import faust
import rocksdict
from faust.stores import memory, rocksdb

log = logging.getLogger(__name__)

# Faust finds the stores by these URL schemes (the "faust.stores" entry points of
# pyproject.toml).
SCHEMES = {"rocksdb": "parkstream-rocksdb", "memory": "parkstream-memory"}

# Per partition database; 4 tables x PARKSTREAM_TOPIC_PARTITIONS databases a worker at most.
# Faust's defaults (64 MiB write buffers x 3, a 2 GiB block cache each) would let two dozen
# databases take far more than the chart's memory limit.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 * 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024**2,
    "target_file_size_base": 16 * 1024**2,
}


class AcknowledgedStore(Protocol):
    """What ``durable`` and the retention need of a table's store (both stores here)."""

    def apply_acknowledged(self, tp: Any, offset: int, key: Any, value: Any) -> None: ...

    def partition_items(self, partition: int) -> Iterator[tuple[Any, Any]]: ...


def partition_items(table: faust.Table[Any, Any], partition: int) -> Iterator[tuple[Any, Any]]:
    """The entries of ``table`` in ``partition`` held by this worker."""
    return cast(AcknowledgedStore, table.data).partition_items(partition)


def store_url(kind: str) -> str:
    """The Faust store URL of ``PARKSTREAM_TABLE_STORE`` (``rocksdb`` or ``memory``)."""
    return f"{SCHEMES[kind]}://"


def table_options(kind: str) -> dict[str, Any]:
    """The ``options`` of a table in the store ``kind``."""
    return dict(ROCKSDB_OPTIONS) if kind == "rocksdb" else {}


class RocksDBStore(rocksdb.Store):
    """One RocksDB file per partition under the data dir, fitted to acknowledged writes."""

    def apply_acknowledged(self, tp: Any, offset: int, key: Any, value: Any) -> None:
        """Apply one acknowledged changelog write (``value`` ``None``: a deletion)."""
        db = self._dbs.get(tp.partition)
        if db is None:  # revoked meanwhile: its next owner reads it from the changelog
            return
        batch = rocksdict.WriteBatch(raw_mode=True)
        raw_key = self._encode_key(key)
        if value is None:
            batch.delete(raw_key)
        else:
            batch.put(raw_key, self._encode_value(value))
        batch.put(self.offset_key, str(offset).encode())
        db.write(batch)
        self._key_index[raw_key] = tp.partition

    def partition_items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        """The entries of ``partition`` held here (none once it was revoked)."""
        db = self._dbs.get(partition)
        if db is None:
            return
        for raw_key, raw_value in self._visible_items(db):
            yield self._decode_key(raw_key), self._decode_value(raw_value)

    def open_partitions(self) -> set[int]:
        """The partitions whose files are open (assigned to this worker)."""
        return set(self._dbs)

    def _get(self, key: bytes) -> bytes | None:
        found = self._get_bucket_for_key(key)
        return None if found is None else found.value

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None


class MemoryStore(memory.Store[Any, Any]):
    """Faust's memory store, knowing the partition of every key (see the module docstring)."""

    def apply_acknowledged(self, tp: Any, offset: int, key: Any, value: Any) -> None:
        """Apply one acknowledged changelog write (``value`` ``None``: a deletion)."""
        if value is None:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        else:
            self.data[key] = value
            self._key_partition[key] = tp.partition

    def partition_items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        """The entries of ``partition`` held here."""
        for key, owner in list(self._key_partition.items()):
            if owner == partition and key in self.data:
                yield key, self.data[key]

    def open_partitions(self) -> set[int]:
        """The partitions some key held here belongs to."""
        return set(self._key_partition.values())
