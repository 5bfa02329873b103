import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.ordering import DeliveryTracker


def test_a_delivery_finished_before_an_earlier_one_waits_for_it():
    tracker = DeliveryTracker()
    first, second, third = (tracker.received("p0") for _ in range(3))
    assert tracker.finished("p0", third) == []
    assert tracker.finished("p0", second) == []
    assert tracker.finished("p0", first) == [first, second, third]


def test_partitions_release_independently():
    tracker = DeliveryTracker()
    tracker.received("p0")
    other = tracker.received("p1")
    assert tracker.finished("p1", other) == [other]
    assert tracker.unfinished("p0") == 1


def test_a_redelivered_record_after_a_rebalance_is_released_behind_the_original():
    tracker = DeliveryTracker()
    original = tracker.received("p0")  # offset 584, still in flight
    repeat = tracker.received("p0")  # offset 584 again: the consumer sought back
    assert tracker.finished("p0", repeat) == []
    assert tracker.finished("p0", original) == [original, repeat]


def test_finishing_an_unknown_delivery_is_an_error():
    with pytest.raises(KeyError):
        DeliveryTracker().finished("p0", 7)


@st.composite
def runs(draw):
    """Deliveries on a few partitions, then finished in a random order."""
    partitions = draw(st.lists(st.integers(0, 2), min_size=1, max_size=60))
    order = draw(st.permutations(range(len(partitions))))
    return partitions, order


@given(runs())
def test_random_completion_orders_never_release_past_an_unfinished_delivery(run):
    partitions, finish_order = run
    tracker = DeliveryTracker()
    deliveries = [(p, tracker.received(p)) for p in partitions]
    finished: set[int] = set()
    released: dict[int, list[int]] = {}
    for index in finish_order:
        partition, delivery = deliveries[index]
        finished.add(delivery)
        for done in tracker.finished(partition, delivery):
            # Everything handed over before it on this partition is finished.
            assert all(d in finished for p, d in deliveries if p == partition and d <= done)
            released.setdefault(partition, []).append(done)
    for partition in set(partitions):
        assert released[partition] == [d for p, d in deliveries if p == partition]
    assert tracker.unfinished() == 0
