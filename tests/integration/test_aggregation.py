"""Mart refresh on the real warehouse: peak/off-peak means, DST days, day/week/month/region
marts, incremental and idempotent refreshes, and the consumption report's interval sets.

Readings are inserted straight into meter.readings_a|b|c, and insert_readings then does what
promotion and restore do after writing readings: it recomputes the day sums of the local days
written (aggregation.resum_spans), which the refresh builds the marts from.
Every fixture day is complete: each UTC half hour from local midnight to the next local
midnight in Europe/London, with kWh = (i + 1) / 100 × the meter's factor, i = the interval's
position in its local day. So 2025-03-30 (clocks forward) has 46 intervals, 2025-10-26 (clocks
back) 50, and the hand-computed means below follow from i alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from meterflow import aggregation, tariffs

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
TABLE = {"A": "meter.readings_a", "B": "meter.readings_b", "C": "meter.readings_c"}
METERS = {  # meter: (source, region, factor)
    "SMR00001A": ("A", "north", 1),
    "SMR00002A": ("A", "south", 2),
    "SMR00001B": ("B", "north", 3),
}
SAT, SPRING, MON_BST = date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)
AUTUMN, MON_GMT = date(2025, 10, 26), date(2025, 10, 27)
DAYS = [SAT, SPRING, MON_BST, AUTUMN, MON_GMT]

# A test tariff set: the shipped ones plus a 16:00-19:00 peak on every day, so the clock-change
# Sundays have a peak window too.
TEST_TARIFFS = tariffs.parse(
    {
        "timezone": "Europe/London",
        "default": "peak",
        "tariffs": {
            "peak": {"peak": [{"days": "weekdays", "start": "16:00", "end": "19:00"}]},
            "economy7": {"off_peak": [{"days": "all", "start": "00:30", "end": "07:30"}]},
            "evening_all": {"peak": [{"days": "all", "start": "16:00", "end": "19:00"}]},
        },
    },
    default_timezone="Europe/London",
)


def day_intervals(day: date) -> list[datetime]:
    """UTC starts of every half hour of a local London day."""
    start = datetime.combine(day, time(), LONDON).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), LONDON).astimezone(UTC)
    return [
        start + timedelta(minutes=30 * i) for i in range(int((end - start).total_seconds() // 1800))
    ]


def kwh(i: int, factor: int) -> Decimal:
    return Decimal(i + 1) * factor / 100


def insert_readings(db, rows, batch_id=1, *, resum=True) -> None:
    """rows: (meter_id, utc interval_start, kwh); then, like a writer of readings, the day sums
    of the days written (unless ``resum`` is False: a change made by hand in SQL)."""
    by_source = defaultdict(list)
    for meter, start, value in rows:
        by_source[METERS[meter][0]].append((meter, start, value))
    for source, items in by_source.items():
        lo = min(r[1] for r in items)
        hi = max(r[1] for r in items) + timedelta(minutes=30)
        db.execute("SELECT meter.ensure_partitions(%s::regclass, %s, %s)", (TABLE[source], lo, hi))
        with db.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE[source]} (meter_id, interval_start, kwh, quality, batch_id, "
                "ingested_at) VALUES (%s, %s, %s, 'A', %s, now()) "
                "ON CONFLICT (meter_id, channel, interval_start) DO UPDATE SET kwh = excluded.kwh, "
                "batch_id = excluded.batch_id",
                [(m, s, v, batch_id) for m, s, v in items],
            )
        if resum:
            aggregation.resum_spans(db, {source: (lo, hi - timedelta(minutes=30))}, TEST_TARIFFS)


def fixture_rows(days=DAYS):
    for meter, (_source, _region, factor) in METERS.items():
        for day in days:
            for i, start in enumerate(day_intervals(day)):
                yield meter, start, kwh(i, factor)


@pytest.fixture
def loaded(db):
    for meter, (source, region, _f) in METERS.items():
        db.execute(
            "INSERT INTO meter.meter (meter_id, source, region) VALUES (%s, %s, %s)",
            (meter, source, region),
        )
    insert_readings(db, fixture_rows())
    return db


def refresh_days(db, days=DAYS, sources=("A", "B")):
    return aggregation.refresh(db, {s: list(days) for s in sources}, TEST_TARIFFS)


def peak_row(db, tariff, meter, day):
    return db.execute(
        "SELECT peak_mean_kwh, offpeak_mean_kwh, peak_intervals, offpeak_intervals, intervals, "
        "expected_intervals, completeness, total_kwh FROM mart.peak_daily "
        "WHERE tariff = %s AND meter_id = %s AND local_date = %s",
        (tariff, meter, day),
    ).fetchone()


def close(value, expected) -> bool:
    return value is not None and abs(Decimal(value) - Decimal(str(expected))) < Decimal("1e-9")


def test_weekday_peak_mean_is_local_16_to_19_and_off_peak_is_the_rest(loaded):
    refresh_days(loaded)
    # Monday 2025-03-31 (BST): local 16:00-18:30 are i = 32..37 → (33+…+38)/6/100.
    peak, off, n_peak, n_off, n, expected, completeness, total = peak_row(
        loaded, "peak", "SMR00001A", MON_BST
    )
    assert (n_peak, n_off, n, expected, completeness) == (6, 42, 48, 48, Decimal("1.0000"))
    assert close(peak, Decimal("0.355"))
    assert close(total, Decimal("11.76"))  # (1+…+48)/100
    assert close(off, (Decimal("11.76") - Decimal("2.13")) / 42)
    # The second meter reads twice as much; source B's three times.
    assert close(peak_row(loaded, "peak", "SMR00002A", MON_BST)[0], Decimal("0.71"))
    assert close(peak_row(loaded, "peak", "SMR00001B", MON_BST)[0], Decimal("1.065"))


def test_weekend_day_has_no_weekday_peak_so_its_peak_mean_is_null(loaded):
    refresh_days(loaded)
    peak, off, n_peak, n_off, n, *_rest, total = peak_row(loaded, "peak", "SMR00001A", SAT)
    assert (peak, n_peak, n_off, n) == (None, 0, 48, 48)
    assert close(off, Decimal("11.76") / 48)
    assert close(total, Decimal("11.76"))


def test_spring_forward_day_has_46_intervals_and_its_peak_still_starts_at_local_16(loaded):
    refresh_days(loaded)
    # 2025-03-30: midnight is GMT (UTC 00:00), 16:00 is BST (UTC 15:00) → i = 30..35.
    peak, off, n_peak, n_off, n, expected, completeness, total = peak_row(
        loaded, "evening_all", "SMR00001A", SPRING
    )
    assert (n_peak, n_off, n, expected, completeness) == (6, 40, 46, 46, Decimal("1.0000"))
    assert close(peak, Decimal("0.335"))  # (31+…+36)/6/100
    assert close(total, Decimal("10.81"))  # (1+…+46)/100
    assert close(off, (Decimal("10.81") - Decimal("2.01")) / 40)
    # Economy 7 night 00:30-07:30: 00:30, then 02:00 … 07:00 (01:00-01:59 never happen): 12.
    e7 = peak_row(loaded, "economy7", "SMR00001A", SPRING)
    assert (e7[2], e7[3]) == (46 - 12, 12)
    assert close(e7[1], Decimal("0.075"))  # (2+…+13)/12/100
    # Sunday under the weekday tariff: no peak.
    assert peak_row(loaded, "peak", "SMR00001A", SPRING)[0] is None


def test_fall_back_day_has_50_intervals_and_its_peak_still_starts_at_local_16(loaded):
    refresh_days(loaded)
    # 2025-10-26: midnight is BST (UTC 23:00 the day before), 16:00 is GMT → i = 34..39.
    peak, off, n_peak, n_off, n, expected, completeness, total = peak_row(
        loaded, "evening_all", "SMR00001A", AUTUMN
    )
    assert (n_peak, n_off, n, expected, completeness) == (6, 44, 50, 50, Decimal("1.0000"))
    assert close(peak, Decimal("0.375"))  # (35+…+40)/6/100
    assert close(total, Decimal("12.75"))  # (1+…+50)/100
    assert close(off, (Decimal("12.75") - Decimal("2.25")) / 44)
    # Economy 7 night: 00:30, 01:00 and 01:30 twice, 02:00 … 07:00 → 16 intervals.
    e7 = peak_row(loaded, "economy7", "SMR00001A", AUTUMN)
    assert e7[3] == 16
    assert close(e7[1], Decimal("0.095"))  # (2+…+17)/16/100


def expected_marts():
    """Every mart value computed independently in Python (zoneinfo), for comparison."""
    per_day = defaultdict(lambda: defaultdict(Decimal))
    counts = defaultdict(lambda: defaultdict(int))
    for meter, start, value in fixture_rows():
        local = start.astimezone(LONDON)
        key = (METERS[meter][0], meter, local.date())
        for name, tariff in TEST_TARIFFS.tariffs.items():
            band = "peak" if tariff.is_peak(local) else "off"
            per_day[(name, *key)][band] += value
            counts[(name, *key)][band] += 1
    return per_day, counts


def test_every_peak_daily_row_matches_an_independent_computation(loaded):
    refresh_days(loaded)
    sums, counts = expected_marts()
    rows = loaded.execute(
        "SELECT tariff, source, meter_id, local_date, peak_kwh, offpeak_kwh, peak_intervals, "
        "offpeak_intervals, peak_mean_kwh, offpeak_mean_kwh FROM mart.peak_daily"
    ).fetchall()
    assert len(rows) == len(sums) == 3 * len(METERS) * len(DAYS)
    for tariff, source, meter, day, pk, ok, npk, nok, pmean, omean in rows:
        key = (tariff, source, meter, day)
        assert (pk, ok) == (sums[key]["peak"], sums[key]["off"]), key
        assert (npk, nok) == (counts[key]["peak"], counts[key]["off"]), key
        if npk:
            assert close(pmean, sums[key]["peak"] / npk), key
        else:
            assert pmean is None, key
        assert close(omean, sums[key]["off"] / nok), key


def test_daily_consumption_is_every_tariffs_day_total_and_the_readings_sum(loaded):
    refresh_days(loaded)
    sums, counts = expected_marts()
    daily = {
        (source, meter, day): (kwh_, n)
        for source, meter, day, kwh_, n in loaded.execute(
            "SELECT source, meter_id, local_date, kwh, intervals FROM mart.consumption_daily"
        ).fetchall()
    }
    assert len(daily) == len(METERS) * len(DAYS)
    for (tariff, *key), bands in sums.items():
        total = (
            bands["peak"] + bands["off"],
            counts[(tariff, *key)]["peak"] + counts[(tariff, *key)]["off"],
        )
        assert daily[tuple(key)] == total, (tariff, key)
    mismatched = loaded.execute(
        "SELECT count(*) FROM mart.peak_daily p JOIN mart.consumption_daily c "
        "USING (source, meter_id, local_date) "
        "WHERE (p.total_kwh, p.intervals) IS DISTINCT FROM (c.kwh, c.intervals)"
    ).fetchone()[0]
    assert mismatched == 0


def test_week_month_and_region_marts_roll_up_the_days(loaded):
    refresh_days(loaded)
    daily = {
        (m, d): k
        for m, d, k in loaded.execute(
            "SELECT meter_id, local_date, kwh FROM mart.consumption_daily"
        )
    }
    assert len(daily) == len(METERS) * len(DAYS)
    weekly = loaded.execute(
        "SELECT meter_id, week_start, iso_week, kwh, intervals, expected_intervals, days "
        "FROM mart.consumption_weekly WHERE meter_id = 'SMR00001A' ORDER BY week_start"
    ).fetchall()
    # Sat 29 + Sun 30 March (week 13), Mon 31 March (week 14), Sun 26 Oct (43), Mon 27 Oct (44).
    assert [(w[1], w[2], w[4], w[5], w[6]) for w in weekly] == [
        (date(2025, 3, 24), 13, 48 + 46, 7 * 48 - 2, 2),
        (date(2025, 3, 31), 14, 48, 7 * 48, 1),
        (date(2025, 10, 20), 43, 50, 7 * 48 + 2, 1),
        (date(2025, 10, 27), 44, 48, 7 * 48, 1),
    ]
    assert weekly[0][3] == daily[("SMR00001A", SAT)] + daily[("SMR00001A", SPRING)]
    monthly = loaded.execute(
        "SELECT month, kwh, intervals, expected_intervals, days FROM mart.consumption_monthly "
        "WHERE meter_id = 'SMR00002A' ORDER BY month"
    ).fetchall()
    assert [(m[0], m[2], m[3], m[4]) for m in monthly] == [
        (date(2025, 3, 1), 48 + 46 + 48, 31 * 48 - 2, 3),
        (date(2025, 10, 1), 50 + 48, 31 * 48 + 2, 2),
    ]
    regions = loaded.execute(
        "SELECT source, region, kwh, meters FROM mart.consumption_by_region "
        "WHERE local_date = %s ORDER BY source, region",
        (MON_BST,),
    ).fetchall()
    assert regions == [
        ("A", "north", daily[("SMR00001A", MON_BST)], 1),
        ("A", "south", daily[("SMR00002A", MON_BST)], 1),
        ("B", "north", daily[("SMR00001B", MON_BST)], 1),
    ]
    profile = loaded.execute(
        "SELECT slot, kwh, readings FROM mart.load_profile_daily "
        "WHERE source = 'A' AND local_date = %s ORDER BY slot",
        (AUTUMN,),
    ).fetchall()
    assert len(profile) == 48
    assert profile[2][2] == 4  # local 01:00 happens twice, for two meters


def _snapshot(db):
    out = {}
    for table in (
        "peak_daily",
        "consumption_daily",
        "consumption_weekly",
        "consumption_monthly",
        "consumption_by_region",
        "load_profile_daily",
    ):
        out[table] = sorted(
            map(tuple, db.execute(f"SELECT xmin::text, * FROM mart.{table}").fetchall())
        )
    return out


def test_a_second_refresh_changes_nothing(loaded):
    refresh_days(loaded)
    before = _snapshot(loaded)
    again = refresh_days(loaded)
    assert set(again.written.values()) == {0}
    assert _snapshot(loaded) == before  # not even a new row version (xmin)


def test_a_second_refresh_skips_the_days_whose_readings_did_not_change(loaded):
    first = refresh_days(loaded)
    again = refresh_days(loaded)
    assert (first.skipped, again.skipped) == (0, again.days)
    assert again.staged_groups == 0  # the readings were not aggregated again


def test_a_changed_tariff_window_recomputes_days_whose_readings_did_not_change(loaded):
    refresh_days(loaded)
    later = tariffs.parse(
        {
            "timezone": "Europe/London",
            "default": "peak",
            "tariffs": {
                "peak": {"peak": [{"days": "weekdays", "start": "16:00", "end": "19:00"}]},
                "economy7": {"off_peak": [{"days": "all", "start": "00:30", "end": "07:30"}]},
                "evening_all": {"peak": [{"days": "all", "start": "17:00", "end": "20:00"}]},
            },
        },
        default_timezone="Europe/London",
    )
    again = aggregation.refresh(loaded, {s: list(DAYS) for s in ("A", "B")}, later)
    assert again.skipped == 0
    # SMR00001A on Monday 31 March: local 17:00-19:30 are i = 34..39 (kwh(i, 1) = (i + 1) / 100).
    peak = peak_row(loaded, "evening_all", "SMR00001A", MON_BST)[0]
    assert close(peak, sum(kwh(i, 1) for i in range(34, 40)) / 6)


def test_a_new_batch_recomputes_only_the_days_it_touched(loaded):
    refresh_days(loaded)
    before = _snapshot(loaded)
    # Batch 2 corrects two readings of SMR00001A on Monday 31 March (local 17:00 = UTC 16:00).
    at = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
    insert_readings(
        loaded,
        [("SMR00001A", at, Decimal("5")), ("SMR00001A", at + timedelta(minutes=30), Decimal("5"))],
        batch_id=2,
    )
    touched = aggregation.touched_days(loaded, {"A": [2]}, "Europe/London")
    assert touched == {"A": [MON_BST]}
    aggregation.refresh(loaded, touched, TEST_TARIFFS)
    after = _snapshot(loaded)
    changed = {t: [r[1:] for r in set(after[t]) - set(before[t])] for t in after}
    # Peak: i = 34, 35 were 0.35 + 0.36, now 10 → peak mean (2.13 - 0.71 + 10) / 6.
    assert close(peak_row(loaded, "peak", "SMR00001A", MON_BST)[0], (Decimal("11.42")) / 6)
    assert {(r[0], r[2], r[3]) for r in changed["peak_daily"]} == {
        (t, "SMR00001A", MON_BST) for t in TEST_TARIFFS.names
    }
    assert [(r[1], r[2]) for r in changed["consumption_daily"]] == [("SMR00001A", MON_BST)]
    assert len(changed["consumption_weekly"]) == 1 and len(changed["consumption_monthly"]) == 1
    assert [(r[0], r[2]) for r in changed["consumption_by_region"]] == [(MON_BST, "north")]
    assert {r[1] for r in changed["load_profile_daily"]} == {MON_BST}


def test_archived_readings_do_not_shrink_the_marts(loaded):
    refresh_days(loaded)
    before = _snapshot(loaded)
    # meter_archive removed the UTC day 2025-03-31: most of the local day 31 March is gone.
    loaded.execute(
        "DELETE FROM meter.readings_a WHERE interval_start >= '2025-03-31 00:00+00' "
        "AND interval_start < '2025-04-01 00:00+00'"
    )
    refresh_days(loaded)
    assert _snapshot(loaded) == before
    # Even summed again from what is left of the readings (rescan), no day shrinks.
    again = aggregation.refresh(
        loaded, {s: list(DAYS) for s in ("A", "B")}, TEST_TARIFFS, rescan=True
    )
    assert again.summed > 0
    assert _snapshot(loaded) == before


def test_a_meter_moving_region_moves_its_consumption(loaded):
    refresh_days(loaded)
    loaded.execute("UPDATE meter.meter SET region = 'east' WHERE meter_id = 'SMR00002A'")
    refresh_days(loaded, days=[MON_BST], sources=["A"])
    regions = loaded.execute(
        "SELECT region FROM mart.consumption_by_region WHERE local_date = %s AND source = 'A' "
        "ORDER BY region",
        (MON_BST,),
    ).fetchall()
    assert regions == [("east",), ("north",)]


def test_plan_from_new_batches_reports_the_days_they_touched(loaded):
    touched = aggregation.touched_days(loaded, {"A": [1], "B": [1]}, "Europe/London")
    assert touched == {"A": DAYS, "B": DAYS}
    plan = aggregation.plan_run(
        params={},
        batch_ids={"A": [1]},
        touched=touched,
        now=datetime(2025, 11, 1, 6, tzinfo=UTC),
        tariffs=TEST_TARIFFS,
    )
    assert (plan.period_start, plan.period_end, plan.reason) == (SAT, MON_GMT, "new batches")


# --- meter_consumption_report: each period returns the right interval set


@pytest.mark.parametrize(
    ("period", "now", "first", "count"),
    [
        # last complete hour before 17:10 BST on 31 March = 15:00-16:00 UTC
        (
            "previous_hour",
            datetime(2025, 3, 31, 16, 10, tzinfo=UTC),
            datetime(2025, 3, 31, 15, 0, tzinfo=UTC),
            2,
        ),
        (
            "current_day",
            datetime(2025, 3, 30, 20, 0, tzinfo=UTC),
            datetime(2025, 3, 30, 0, 0, tzinfo=UTC),
            46,
        ),
        (
            "current_day",
            datetime(2025, 10, 26, 12, 0, tzinfo=UTC),
            datetime(2025, 10, 25, 23, 0, tzinfo=UTC),
            50,
        ),
        # week of Mon 24 March: only Sat 29 and Sun 30 hold readings
        (
            "current_week",
            datetime(2025, 3, 30, 12, 0, tzinfo=UTC),
            datetime(2025, 3, 29, 0, 0, tzinfo=UTC),
            48 + 46,
        ),
        (
            "current_month",
            datetime(2025, 3, 31, 12, 0, tzinfo=UTC),
            datetime(2025, 3, 29, 0, 0, tzinfo=UTC),
            48 + 46 + 48,
        ),
        # 1 April 00:30 BST is still 31 March 23:30 UTC: "previous month" is March
        (
            "previous_month",
            datetime(2025, 3, 31, 23, 30, tzinfo=UTC),
            datetime(2025, 3, 29, 0, 0, tzinfo=UTC),
            48 + 46 + 48,
        ),
        (
            "previous_month",
            datetime(2025, 11, 5, 9, 0, tzinfo=UTC),
            datetime(2025, 10, 25, 23, 0, tzinfo=UTC),
            50 + 48,
        ),
    ],
)
def test_consumption_report_period_returns_the_right_intervals(loaded, period, now, first, count):
    p = aggregation.period_bounds(period, now, LONDON)
    rows = aggregation.meter_intervals(loaded, "SMR00001A", p)
    assert len(rows) == count
    assert rows[0][0] == first
    assert all(p.start <= r[0] < p.end for r in rows)
    # Nothing of the meter's readings inside the span is missing.
    inside = [s for _m, s, _k in fixture_rows() if _m == "SMR00001A" and p.start <= s < p.end]
    assert [r[0] for r in rows] == sorted(inside)


def test_consumption_report_of_an_unknown_meter_names_it(loaded):
    p = aggregation.period_bounds("current_day", datetime(2025, 3, 30, tzinfo=UTC), LONDON)
    with pytest.raises(aggregation.AggregationError, match="SMR99999A"):
        aggregation.meter_intervals(loaded, "SMR99999A", p)


def test_peak_charts_are_written_as_png_files(loaded, tmp_path):
    refresh_days(loaded)
    plan = aggregation.Plan(
        days={},
        period_start=SAT,
        period_end=MON_BST,
        sources=("A", "B"),
        tariff="peak",
        reason="test",
    )
    paths = aggregation.write_peak_charts(loaded, plan, TEST_TARIFFS, tmp_path)
    assert sorted(p.name for p in paths) == [
        "consumption_by_region.png",
        "load_profile_peak.png",
        "meter_heatmap.png",
        "peak_means_peak.png",
    ]
    for p in paths:
        assert p.parent == tmp_path / "2025-03-31"
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_consumption_report_writes_csv_and_chart(loaded, tmp_path):
    p = aggregation.period_bounds("current_day", datetime(2025, 10, 26, 12, tzinfo=UTC), LONDON)
    paths = aggregation.write_consumption_report(
        loaded, "SMR00001A", p, LONDON, tmp_path, date(2025, 10, 26)
    )
    png, csv_path = paths
    lines = csv_path.read_text().splitlines()
    assert lines[0] == ",".join(aggregation.CSV_HEADER)
    assert len(lines) == 1 + 50
    local = aggregation.CSV_HEADER.index("interval_start_local")
    assert lines[3].split(",")[local] == "2025-10-26T01:00:00+01:00"
    assert lines[5].split(",")[local] == "2025-10-26T01:00:00+00:00"
    assert {line.split(",")[1] for line in lines[1:]} == {"E1"}  # the channel column
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the charts show the data: lines, bars, cells and axis ranges match the fixture


def _chart_plan(tariff="peak"):
    return aggregation.Plan(
        days={},
        period_start=SAT,
        period_end=MON_BST,
        sources=("A", "B"),
        tariff=tariff,
        reason="test",
    )


def test_peak_means_chart_draws_each_sources_daily_peak_and_off_peak_means(loaded):
    import matplotlib.dates as mdates

    refresh_days(loaded)
    fig = aggregation.peak_figures(loaded, _chart_plan(), TEST_TARIFFS)["peak_means_peak.png"]
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["A off-peak", "A peak", "B off-peak", "B peak"]
    for line in lines.values():
        assert [mdates.num2date(x).date() for x in line.get_xdata(orig=False)] == [
            SAT,
            SPRING,
            MON_BST,
        ]
    # Source A = SMR00001A + SMR00002A (factor 1 + 2). Monday's peak: (2.13 + 4.26) / 12.
    # Saturday and the clock-change Sunday have no weekday peak: gaps, not zeros.
    peak_a = list(lines["A peak"].get_ydata())
    assert [math.isnan(v) for v in peak_a] == [True, True, False]
    assert abs(peak_a[2] - 0.5325) < 1e-9
    off_a = list(lines["A off-peak"].get_ydata())
    assert abs(off_a[0] - 3 * 11.76 / 96) < 1e-9  # Saturday: every interval is off-peak
    assert abs(off_a[1] - 3 * 10.81 / 92) < 1e-9  # Sunday 30 March: 46 intervals a meter
    assert abs(lines["B peak"].get_ydata()[2] - 1.065) < 1e-9
    lo, hi = ax.get_xlim()
    assert lo <= mdates.date2num(SAT) and hi >= mdates.date2num(MON_BST)
    top = max(v for line in lines.values() for v in line.get_ydata() if not math.isnan(v))
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= top
    assert "2025-03-29 to 2025-03-31" in ax.get_title(loc="left")
    assert "kWh" in ax.get_ylabel()


def test_load_profile_chart_has_48_local_half_hours_per_source_and_shades_the_peak(loaded):
    refresh_days(loaded)
    fig = aggregation.peak_figures(loaded, _chart_plan(), TEST_TARIFFS)["load_profile_peak.png"]
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["source A", "source B"]
    a = lines["source A"].get_ydata()
    assert len(a) == 48 and ax.get_xlim() == (-0.5, 47.5)
    # Local 16:00 (slot 32): i = 32, 30 (clocks forward), 32 → (0.33 + 0.31 + 0.33) × (1 + 2) / 6
    assert abs(a[32] - 0.485) < 1e-9
    # Local 01:00 (slot 2) never happened on 30 March: only Saturday and Monday (i = 2).
    assert abs(a[2] - 0.03 * 3 * 2 / 4) < 1e-9
    shaded = [p for p in ax.patches if p.get_label() == "peak (weekdays)"]
    assert len(shaded) == 1
    span = shaded[0]  # a Rectangle from x = start to x + width, in slot numbers
    assert (span.get_x(), span.get_x() + span.get_width()) == (31.5, 37.5)  # 16:00-19:00 local


def test_heatmap_and_region_charts_hold_each_meters_daily_kwh(loaded):
    refresh_days(loaded)
    figures = aggregation.peak_figures(loaded, _chart_plan(), TEST_TARIFFS)
    ax = figures["meter_heatmap.png"].axes[0]
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (3, 3)  # 3 meters × 3 local days
    assert [t.get_text() for t in ax.get_yticklabels()] == sorted(METERS)
    assert [round(float(v), 6) for v in grid[0]] == [11.76, 10.81, 11.76]  # SMR00001A
    assert [round(float(v), 6) for v in grid[1]] == [35.28, 32.43, 35.28]  # SMR00001B (× 3)
    ax = figures["consumption_by_region.png"].axes[0]
    bars = {c.get_label(): [round(b.get_height(), 6) for b in c] for c in ax.containers}
    period = 11.76 + 10.81 + 11.76
    assert bars == {
        "source A": [round(period, 6), round(2 * period, 6)],  # north, south
        "source B": [round(3 * period, 6), 0.0],
    }
    assert [t.get_text() for t in ax.get_xticklabels()] == ["north", "south"]


def test_consumption_chart_has_one_bar_per_interval_of_the_period(loaded):
    from meterflow import charts

    p = aggregation.period_bounds("current_day", datetime(2025, 10, 26, 12, tzinfo=UTC), LONDON)
    rows = aggregation.meter_intervals(loaded, "SMR00001A", p)
    ax = charts.consumption_chart(rows, "SMR00001A", "current_day", LONDON, daily=False).axes[0]
    heights = [round(b.get_height(), 6) for b in ax.patches]
    assert heights == [round((i + 1) / 100, 6) for i in range(50)]
    p = aggregation.period_bounds("previous_month", datetime(2025, 4, 2, 9, tzinfo=UTC), LONDON)
    rows = aggregation.meter_intervals(loaded, "SMR00001A", p)
    ax = charts.consumption_chart(rows, "SMR00001A", "previous_month", LONDON, daily=True).axes[0]
    assert [round(b.get_height(), 6) for b in ax.patches] == [11.76, 10.81, 11.76]


def test_a_reading_off_the_half_hour_grid_stops_the_refresh_and_names_it(loaded):
    refresh_days(loaded)
    before = _snapshot(loaded)
    odd = datetime(2025, 3, 31, 16, 10, tzinfo=UTC)
    insert_readings(loaded, [("SMR00001A", odd, Decimal("1"))], batch_id=3, resum=False)
    with pytest.raises(aggregation.AggregationError, match=r"source A: 1 .*2025-03-31T16:10"):
        aggregation.refresh(loaded, {"A": list(DAYS)}, TEST_TARIFFS, rescan=True)
    assert _snapshot(loaded) == before  # nothing written: the refresh is one transaction


def test_a_reading_off_the_half_hour_grid_stops_its_writer_and_names_it(loaded):
    odd = datetime(2025, 3, 31, 16, 10, tzinfo=UTC)
    raised = pytest.raises(aggregation.AggregationError, match=r"source A: 1 .*2025-03-31T16:10")
    with raised, loaded.transaction():  # a promotion's transaction: nothing of it stays
        insert_readings(loaded, [("SMR00001A", odd, Decimal("1"))], batch_id=3)
    assert loaded.execute(
        "SELECT count(*) FROM meter.readings_a WHERE interval_start = %s", (odd,)
    ).fetchone() == (0,)


def test_days_that_are_not_asked_for_between_two_asked_days_are_not_computed(db):
    for meter, (source, region, _f) in METERS.items():
        db.execute(
            "INSERT INTO meter.meter (meter_id, source, region) VALUES (%s, %s, %s)",
            (meter, source, region),
        )
    insert_readings(db, fixture_rows([SAT, SPRING, MON_BST]))
    aggregation.refresh(db, {"A": [SAT, MON_BST]}, TEST_TARIFFS)
    days = db.execute(
        "SELECT DISTINCT source, local_date FROM mart.peak_daily ORDER BY 1, 2"
    ).fetchall()
    assert days == [("A", SAT), ("A", MON_BST)]
    profile = db.execute(
        "SELECT local_date, count(*), sum(readings) FROM mart.load_profile_daily "
        "GROUP BY local_date ORDER BY 1"
    ).fetchall()
    assert profile == [(SAT, 48, 96), (MON_BST, 48, 96)]


def test_a_tariff_set_of_one_tariff_gives_that_tariffs_rows_only(loaded):
    only = tariffs.parse(
        {
            "timezone": "Europe/London",
            "default": "evening_all",
            "tariffs": {
                "evening_all": {"peak": [{"days": "all", "start": "16:00", "end": "19:00"}]}
            },
        },
        default_timezone="Europe/London",
    )
    aggregation.refresh(loaded, {s: list(DAYS) for s in ("A", "B")}, only)
    tariffs_written = loaded.execute("SELECT DISTINCT tariff FROM mart.peak_daily").fetchall()
    assert tariffs_written == [("evening_all",)]
    # SMR00002A on the clock-forward Sunday: local 16:00-18:30 are i = 30..35 (46-interval day).
    peak, offpeak, npk, nok, n, expected, _c, _t = peak_row(
        loaded, "evening_all", "SMR00002A", SPRING
    )
    assert (npk, nok, n, expected) == (6, 40, 46, 46)
    assert close(peak, sum(kwh(i, 2) for i in range(30, 36)) / 6)
    assert close(
        offpeak, (sum(kwh(i, 2) for i in range(46)) - sum(kwh(i, 2) for i in range(30, 36))) / 40
    )
