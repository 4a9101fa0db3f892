"""Time and duration arguments of the operator commands (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.ops import parse_duration, parse_time, window_label
from worker.errors import ValidationError

NOW = 1_800_000_000.0
EIGHT = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2027, 1, 15, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "expected"), [
    ("-90s", NOW - 90), ("-15m", NOW - 900), ("-1h", NOW - 3600), ("2d", NOW - 172800),
    ("-1w", NOW - 604800), ("-1.5h", NOW - 5400),
    ("2027-01-15T08:00:00Z", EIGHT), ("2027-01-15T08:00:00", EIGHT),
    ("2027-01-15T09:00:00+01:00", EIGHT), ("2027-01-15", MIDNIGHT),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text", ["", "yesterday", "-1y", "1 h", "2027-02-30", "--1h"])
def test_parse_time_refuses(text):
    with pytest.raises(ValidationError, match="neither an ISO 8601 time"):
        parse_time(text, now=NOW, name="--since")


def test_durations_and_labels():
    assert parse_duration("15m") == 900 and parse_duration("-2h") == 7200
    with pytest.raises(ValidationError, match="is not a duration"):
        parse_duration("soon")
    assert [window_label(s) for s in (300, 3600, 86400, 90, 5400)] == ["5m", "1h", "1d", "90s", "90m"]
