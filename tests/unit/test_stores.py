"""The worker's table stores (foundation.worker.stores) on a real Faust app: RocksDB files
under the data dir by default, acknowledged writes applied with their offset, reads that do
not depend on Faust's current event, and nothing kept of a partition that moved away."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP

from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from foundation.worker.stores import MemoryStore, RocksDBStore


def journal(tmp_path, store="rocksdb") -> faust.Table:
    settings = Settings(data_dir=tmp_path / "data", table_store=store, topic_partitions=2)
    return WorkerApp(settings).table("journal", key_type=str)


def changelog_tp(table: faust.Table, partition: int) -> TP:
    return TP(table.changelog_topic.get_topic_name(), partition)


def opened(tmp_path, *partitions: int) -> faust.Table:
    """A RocksDB journal with the files of ``partitions`` open, as after their assignment."""
    table = journal(tmp_path)
    for partition in partitions:
        table.data._db_for_partition(partition)
    return table


def test_the_worker_keeps_its_tables_in_rocksdb_files_under_the_data_dir_by_default(tmp_path):
    table = journal(tmp_path)
    assert isinstance(table.data, RocksDBStore)
    table.data._db_for_partition(0)  # what Faust does when the partition is assigned
    files = list((tmp_path / "data" / "worker").rglob("journal-0.db"))
    assert files and files[0].is_dir()


def test_the_memory_store_is_a_setting(tmp_path):
    assert isinstance(journal(tmp_path, store="memory").data, MemoryStore)


def test_an_acknowledged_write_is_kept_with_its_offset_and_survives_a_reopen(tmp_path):
    table = opened(tmp_path, 1)
    store = table.data
    tp = changelog_tp(table, 1)
    store.apply_acknowledged(tp, 41, "cmd-1", {"state": "intent"})
    store.apply_acknowledged(tp, 42, "cmd-1", {"state": "done"})
    assert store.persisted_offset(tp) == 42
    assert table.get("cmd-1") == {"state": "done"}

    store.revoke_partitions(table, {tp})  # the worker stops: its file is closed
    again = journal(tmp_path)  # a restarted worker opens the same file
    again.data._db_for_partition(1)
    assert again.data.persisted_offset(tp) == 42  # its recovery reads from offset 43 on
    assert dict(again.data.partition_items(1)) == {"cmd-1": {"state": "done"}}


def test_a_deletion_removes_the_key_and_moves_the_offset(tmp_path):
    table = opened(tmp_path, 0)
    store = table.data
    tp = changelog_tp(table, 0)
    store.apply_acknowledged(tp, 1, "cmd-1", {"state": "done"})
    store.apply_acknowledged(tp, 2, "cmd-1", None)
    assert table.get("cmd-1") is None and store.persisted_offset(tp) == 2


def test_a_read_finds_the_key_whatever_event_is_current(tmp_path, monkeypatch):
    table = opened(tmp_path, 0, 1)
    store = table.data
    store.apply_acknowledged(changelog_tp(table, 1), 5, "cmd-1", {"state": "done"})
    store._key_index.clear()  # as after a restart
    # A task holding an event of partition 0 reads a key of partition 1: Faust's own
    # store looks in partition 0 only and answers None (a journal entry "missing": a
    # command applied again).
    other = SimpleNamespace(message=SimpleNamespace(partition=0))
    monkeypatch.setattr("faust.stores.rocksdb.current_event", lambda: other)
    assert table.get("cmd-1") == {"state": "done"}
    assert "cmd-1" in table


def test_a_write_acknowledged_after_its_partition_was_revoked_is_not_kept(tmp_path):
    table = opened(tmp_path, 0)
    store = table.data
    tp = changelog_tp(table, 0)
    store.apply_acknowledged(tp, 7, "cmd-1", {"state": "intent"})
    store.revoke_partitions(table, {tp})
    store.apply_acknowledged(tp, 8, "cmd-1", {"state": "done"})  # its next owner reads it
    assert store.open_partitions() == set()
    assert table.get("cmd-1") is None  # nothing of the partition is held any more
    store._db_for_partition(0)  # the partition comes back: recovery starts after offset 7
    assert store.persisted_offset(tp) == 7


def test_the_memory_store_drops_live_written_keys_of_a_partition_that_moved_away(tmp_path):
    """Faust's memory store forgot which partition a key written live belongs to, so such
    keys stayed in the old owner's memory for good."""
    table = journal(tmp_path, store="memory")
    store = table.data
    store.apply_acknowledged(changelog_tp(table, 0), 1, "kept", {"state": "done"})
    store.apply_acknowledged(changelog_tp(table, 1), 1, "moved", {"state": "done"})
    assert store.open_partitions() == {0, 1}

    async def recovered():
        await store.on_recovery_completed({changelog_tp(table, 0)}, set())

    asyncio.run(recovered())
    assert dict(store.data) == {"kept": {"state": "done"}}
    assert dict(store.partition_items(0)) == {"kept": {"state": "done"}}


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_partition_items_lists_one_partitions_entries(tmp_path, store):
    table = journal(tmp_path, store=store)
    data = table.data
    if store == "rocksdb":
        data._db_for_partition(0)
        data._db_for_partition(1)
    data.apply_acknowledged(changelog_tp(table, 0), 1, "a", {"n": 1})
    data.apply_acknowledged(changelog_tp(table, 1), 1, "b", {"n": 2})
    assert dict(data.partition_items(0)) == {"a": {"n": 1}}
    assert dict(data.partition_items(1)) == {"b": {"n": 2}}
