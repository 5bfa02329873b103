"""Consumer lag per partition: high watermark minus the committed offset."""

from __future__ import annotations

import pytest

from parkstream.settings import TOPICS, Settings
from streams.lag import partition_lag, short_names


@pytest.mark.parametrize(
    ("highwater", "committed", "earliest", "lag"),
    [
        (120, 100, 0, 20),  # 20 records after the committed offset
        (100, 100, 0, 0),  # caught up
        (50, None, 0, 50),  # nothing committed yet: everything from the earliest record
        (50, None, 30, 20),  # the log was truncated up to offset 30
        (10, 12, 0, 0),  # a commit seen before the refreshed high watermark: never negative
        (None, 5, 0, None),  # the high watermark is unknown: no sample
    ],
)
def test_lag_is_what_waits_after_the_committed_offset(highwater, committed, earliest, lag):
    assert partition_lag(highwater, committed, earliest) == lag


def test_lag_is_labelled_with_short_topic_names_and_no_changelog():
    settings = Settings()
    SHORT_NAMES = short_names(settings)
    assert set(SHORT_NAMES.values()) == set(TOPICS)
    assert SHORT_NAMES[settings.topic("results")] == "results"
    assert not any("changelog" in name for name in SHORT_NAMES)
