"""The load's compact duplicate finder (runs of intervals, issue 27) finds exactly the duplicate
keys, with their copy counts, that the per-row in-memory tracker finds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.ingest import _DuplicateKeys, _DuplicateTracker


def test_runs_find_the_same_duplicates_as_rows_across_and_within_chunks():
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(200):
        runs, rows = _DuplicateKeys(), _DuplicateTracker()
        for _chunk in range(int(rng.integers(1, 5))):
            n = int(rng.integers(1, 60))
            slots = 1_700_000_000 + 1800 * rng.integers(0, 40, n)
            frame = pd.DataFrame(
                {
                    "meter_id": rng.choice(["QB01234567", "6001234567"], n),
                    "channel": rng.choice(["E1", "B1"], n),
                    "interval_start": pd.to_datetime(slots, unit="s", utc=True),
                    "kwh": rng.choice([0.5, 0.7], n),
                    "quality": "A",
                }
            )
            runs.add(frame)
            rows.add(frame)
        exact, conflicts = rows.resolve()
        assert sorted(runs.resolve()) == sorted(exact + conflicts)
        found += len(exact + conflicts)
    assert found > 100  # the draws do make duplicates


def test_a_file_without_duplicates_has_none():
    keys = _DuplicateKeys()
    starts = pd.date_range("2025-01-01", periods=96, freq="30min", tz="UTC")
    for half in (starts[:48], starts[48:]):
        keys.add(
            pd.DataFrame(
                {"meter_id": "QB01234567", "channel": "E1", "interval_start": half,
                 "kwh": 0.5, "quality": "A"}
            )
        )  # fmt: skip
    assert keys.resolve() == []
    assert len(np.concatenate(keys.starts)) == 2  # one run per chunk, not 96 keys
