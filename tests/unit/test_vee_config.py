"""vee.yaml is checked when read, and a run's days follow the close delay and the Params."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from meterflow import vee


def test_the_shipped_vee_yaml_reads_and_names_every_code():
    cfg = vee.load_config()
    assert cfg.codes() == {
        "spike": "SPIKE",
        "flat": "FLAT",
        "zero": "ZERO",
        "high": "HIGH",
        "low": "LOW",
        "gap": "GAP",
        "linear": "LINEAR",
        "like_day": "LIKE_DAY",
    }
    assert cfg.timezone == "Europe/London"  # empty in the file: the local_tz setting


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("estimation:\n  decimals: 4", "estimation:\n  decimals: -1"), "estimation.decimals"),
        (("code: FLAT", "code: SPIKE"), "codes must differ"),
        (("timezone:\n", "timezone: Mars/Olympus\n"), "unknown zone"),
        (("      weeks: 4\n", ""), "estimation.methods.like_day.weeks"),
    ],
)
def test_a_bad_vee_yaml_is_refused_naming_the_key(tmp_path, edit, message):
    text = vee.VEE_FILE.read_text(encoding="utf-8")
    assert edit[0] in text
    path = tmp_path / "vee.yaml"
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(vee.VeeError, match=message):
        vee.load_config(path)


def test_a_day_closes_after_the_delay_and_the_daily_run_takes_the_lookback():
    cfg = vee.load_config()  # close_delay_hours 5, lookback_days 2, Europe/London
    before = datetime(2025, 6, 12, 3, 59, tzinfo=UTC)  # 04:59 BST: 11 June not closed yet
    after = datetime(2025, 6, 12, 4, 0, tzinfo=UTC)  # 05:00 BST
    assert vee.plan_days({}, [], before, cfg) == (date(2025, 6, 9), date(2025, 6, 10))
    assert vee.plan_days({}, [], after, cfg) == (date(2025, 6, 10), date(2025, 6, 11))


def test_params_win_and_new_batches_are_clipped_to_closed_days():
    cfg = vee.load_config()
    now = datetime(2025, 6, 12, 5, 0, tzinfo=UTC)
    assert vee.plan_days({"date_from": "2025-05-01"}, [], now, cfg) == (
        date(2025, 5, 1),
        date(2025, 5, 1),
    )
    with pytest.raises(vee.VeeError, match="before date_from"):
        vee.plan_days({"date_from": "2025-05-02", "date_to": "2025-05-01"}, [], now, cfg)
    touched = [date(2025, 6, 12), date(2025, 6, 9), date(2025, 1, 1)]  # today, late, too old
    assert vee.plan_days({}, touched, now, cfg) == (date(2025, 6, 9), date(2025, 6, 9))
    assert vee.plan_days({}, [date(2025, 6, 12)], now, cfg) is None
