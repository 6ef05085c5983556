"""Profile arithmetic on hand-made vectors: decay, interests, negatives, interactions parsing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from mmrec.recsys.interactions import make_interaction, parse_rows, parse_timestamp, rating_weight
from mmrec.recsys.profiles import Profile, ProfileConfig

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CFG = ProfileConfig(half_life_days=10, max_interests=3, join_similarity=0.5)


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, np.float32)
    return v / np.linalg.norm(v)


def test_one_interest_is_the_weighted_mean():
    p = Profile("u", 3)
    p.add("a", "like", 4.0, T0, unit(1, 0, 0), CFG)
    p.add("b", "view", 1.0, T0, unit(1, 0.2, 0), CFG)
    ((direction, share),) = p.interests()
    expected = unit(*(4 * unit(1, 0, 0) + 1 * unit(1, 0.2, 0)))
    np.testing.assert_allclose(direction, expected, atol=1e-6)
    assert share == 1.0 and p.seen == {"a", "b"} and p.events == 2


def test_half_life_halves_old_weight():
    p = Profile("u", 3)
    p.add("a", "like", 1.0, T0, unit(1, 0, 0), CFG)
    p.add("b", "like", 1.0, T0 + timedelta(days=10), unit(0, 1, 0), CFG)  # far apart: two interests
    shares = {tuple(np.round(d, 3)): s for d, s in p.interests()}
    assert shares[(0.0, 1.0, 0.0)] == pytest.approx(2 / 3)  # weight 1 vs 0.5 after one half-life
    # an old interaction arriving late is decayed by its own age, with the same result
    q = Profile("u", 3)
    q.add("b", "like", 1.0, T0 + timedelta(days=10), unit(0, 1, 0), CFG)
    q.add("a", "like", 1.0, T0, unit(1, 0, 0), CFG)
    assert sorted(s for _, s in q.interests()) == pytest.approx(sorted(s for _, s in p.interests()))


def test_diverse_history_gets_several_interests_and_merges_beyond_the_limit():
    p = Profile("u", 4)
    for i, v in enumerate([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0)]):
        p.add(f"x{i}", "like", 1.0, T0, v, CFG)
    assert len(p.interests()) == 3
    p.add("x3", "like", 1.0, T0, unit(0, 0, 0.2, 1), CFG)  # a fourth direction: the two closest merge
    assert len(p.interests()) == 3 and sum(p.counts) == 4


def test_negative_events_build_the_negative_vector():
    p = Profile("u", 3)
    p.add("a", "like", 4.0, T0, unit(1, 0, 0), CFG)
    p.add("b", "dislike", -4.0, T0, unit(0, 1, 0), CFG)
    direction, strength = p.negative_direction()
    np.testing.assert_allclose(direction, unit(0, 1, 0))
    assert strength == pytest.approx(0.5)
    assert len(p.interests()) == 1 and "b" in p.seen


def test_row_round_trip():
    p = Profile("u", 3)
    p.add("a", "like", 4.0, T0, unit(1, 0, 0), CFG)
    p.add("b", "skip", -1.0, T0 + timedelta(hours=1), unit(0, 1, 0), CFG)
    q = Profile.from_row(p.to_row(), 3)
    assert q.seen == p.seen and q.history == p.history and q.ref_time == p.ref_time
    np.testing.assert_allclose(q.sums[0], p.sums[0])
    np.testing.assert_allclose(q.negative, p.negative)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2026-01-01", T0),
        (1767225600, T0),
        ("1767225600", T0),
        (1767225600000, T0),  # milliseconds
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "", None, "nan", float("inf"), True, [1]])
def test_bad_timestamps(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


def test_ratings_become_weighted_interactions():
    assert [rating_weight(r) for r in (1, 2, 3, 4, 5)] == [-4, -2, 0, 2, 4]
    inter = make_interaction("u", "i", rating="5", ts=0)
    assert inter.event == "rating" and inter.weight == 4.0


def test_parse_rows_reports_each_bad_row():
    rows = [
        (2, {"user": "u1", "item": "a", "event": "like", "timestamp": "2026-01-01"}),
        (3, {"user": "", "item": "a", "event": "like", "timestamp": "2026-01-01"}),
        (4, {"user": "u1", "item": "zzz", "event": "like", "timestamp": "2026-01-01"}),
        (5, {"user": "u1", "item": "a", "event": "teleport", "timestamp": "2026-01-01"}),
        (6, {"user": "u1", "item": "a", "rating": "ten", "timestamp": "2026-01-01"}),
        (7, {"user": "u1", "item": "a", "rating": "9", "timestamp": "2026-01-01"}),
        (8, {"user": "u1", "item": "a", "event": "view", "timestamp": "soon"}),
        (9, {"user": "u1", "item": "a", "event": "view"}),
        (10, {"user": "u1", "item": "a", "event": "view", "timestamp": 5, "weight": "heavy"}),
        (11, ["not", "an", "object"]),
    ]
    good, bad = parse_rows(rows, {"a"})
    assert len(good) == 1
    reasons = {b.row: b.reason for b in bad}
    assert reasons[3] == "missing user"
    assert reasons[4] == "unknown item 'zzz'"
    assert "unknown event 'teleport'" in reasons[5] and "valid events" in reasons[5]
    assert "unparseable rating" in reasons[6]
    assert "outside 0–5" in reasons[7]
    assert "unparseable timestamp" in reasons[8]
    assert reasons[9] == "missing timestamp"
    assert "unparseable weight" in reasons[10]
    assert "expected an object" in reasons[11]
