import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.ordering import OffsetTracker


def test_an_offset_finished_before_an_earlier_one_waits_for_it():
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.received("p0", offset)
    assert tracker.finished("p0", 12) == []
    assert tracker.finished("p0", 11) == []
    assert tracker.finished("p0", 10) == [10, 11, 12]


def test_partitions_release_independently():
    tracker = OffsetTracker()
    tracker.received("p0", 1)
    tracker.received("p1", 1)
    assert tracker.finished("p1", 1) == [1]
    assert tracker.unfinished("p0") == 1


def test_an_offset_received_out_of_order_is_refused():
    tracker = OffsetTracker()
    tracker.received("p0", 5)
    with pytest.raises(ValueError):
        tracker.received("p0", 4)


def test_a_revoked_partition_is_forgotten():
    tracker = OffsetTracker()
    tracker.received("p0", 1)
    tracker.received("p0", 2)
    assert tracker.forget("p0") == 2
    assert tracker.unfinished() == 0


@st.composite
def runs(draw):
    """Offsets received on a few partitions, then finished in a random order."""
    received = []
    for partition in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 1000))
        gaps = draw(st.lists(st.integers(1, 3), min_size=1, max_size=25))
        offset = start
        for gap in gaps:
            received.append((partition, offset))
            offset += gap
    order = draw(st.permutations(received))
    return received, order


@given(runs())
def test_random_completion_orders_never_release_past_an_unfinished_offset(run):
    received, finish_order = run
    tracker = OffsetTracker()
    for partition, offset in received:
        tracker.received(partition, offset)
    finished: set[tuple[int, int]] = set()
    released: dict[int, list[int]] = {}
    for partition, offset in finish_order:
        finished.add((partition, offset))
        for done in tracker.finished(partition, offset):
            # Everything received on this partition up to a released offset is finished.
            assert all(
                (p, o) in finished for p, o in received if p == partition and o <= done
            )
            released.setdefault(partition, []).append(done)
    # In the end everything is released, each partition in topic order.
    for partition in {p for p, _ in received}:
        assert released[partition] == [o for p, o in received if p == partition]
    assert tracker.unfinished() == 0
