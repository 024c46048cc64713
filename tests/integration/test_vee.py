"""VEE against the real PostgreSQL: flags, estimates by method, actuals replacing estimates.

Fixture: meter SMR00001A (E1 import, and Q1 reactive) reads every half hour from 15 September
to 27 October 2025 (Europe/London; 26 October has 50 half hours), except for gaps of 1, 2, 3
and 10 half hours on Tuesday 21 October, all of Thursday 23 October (48) and all of Sunday
26 October (the clock-change day, 50); a spike on Wednesday 22 October. Meter SMR00002A reads
the same pattern with a flat line (0.333 all of 24 October) and zero consumption (25 October).
Every expected estimate is computed here in Python from the fixture's values, by the method's
definition in docs/vee.md, not read back from the database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from meterflow import segregate, vee

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
HALF = timedelta(minutes=30)
FIRST, LAST = date(2025, 9, 15), date(2025, 10, 27)
WINDOW = (date(2025, 10, 20), date(2025, 10, 26))
TUESDAY, WEDNESDAY, THURSDAY, SUNDAY = (date(2025, 10, d) for d in (21, 22, 23, 26))
# local half hours of the day (Tuesday) missing, by gap
GAPS = {1: [10], 2: [14, 15], 3: [20, 21, 22], 10: list(range(30, 40))}
SPIKE_SLOT, SPIKE_KWH = 18, Decimal("5.000")
FOUR = Decimal("0.0001")


def day_starts(day: date) -> list[datetime]:
    lo = datetime.combine(day, time(), LONDON).astimezone(UTC)
    hi = datetime.combine(day + timedelta(days=1), time(), LONDON).astimezone(UTC)
    return [lo + HALF * i for i in range((hi - lo) // HALF)]


def slot(t: datetime) -> int:
    local = t.astimezone(LONDON)
    return local.hour * 2 + local.minute // 30


def pattern(t: datetime) -> Decimal:
    """kWh of a half hour: rises through the local day, and by day (three levels)."""
    day = t.astimezone(LONDON).date()
    return Decimal("0.200") + Decimal("0.010") * slot(t) + Decimal("0.050") * (day.toordinal() % 3)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def build() -> dict[tuple[str, str], dict[datetime, Decimal]]:
    """series (meter, channel) → {UTC interval start: kWh} as stored."""
    one: dict[datetime, Decimal] = {}
    two: dict[datetime, Decimal] = {}
    reactive: dict[datetime, Decimal] = {}
    for day in _days(FIRST, LAST):
        for t in day_starts(day):
            missing = (day == TUESDAY and any(slot(t) in s for s in GAPS.values())) or day in (
                THURSDAY,
                SUNDAY,
            )
            if not missing:
                one[t] = SPIKE_KWH if (day, slot(t)) == (WEDNESDAY, SPIKE_SLOT) else pattern(t)
            if (day, slot(t)) != (TUESDAY, 5):  # Q1 has a gap too: never estimated
                reactive[t] = Decimal("0.100")
            if day == date(2025, 10, 24):
                two[t] = Decimal("0.333")
            elif day == date(2025, 10, 25):
                two[t] = Decimal("0.000")
            else:
                two[t] = pattern(t)
    return {("SMR00001A", "E1"): one, ("SMR00001A", "Q1"): reactive, ("SMR00002A", "E1"): two}


@pytest.fixture
def series(db):
    data = build()
    db.execute(
        "INSERT INTO meter.meter (meter_id, source) VALUES ('SMR00001A', 'A'), ('SMR00002A', 'A')"
    )
    db.execute(
        "SELECT meter.ensure_partitions('meter.readings_a'::regclass, %s, %s)",
        (datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC)),
    )
    with db.cursor().copy(
        "COPY meter.readings_a (meter_id, channel, interval_start, kwh, quality, batch_id, "
        "ingested_at) FROM STDIN"
    ) as copy:
        for (meter, channel), values in data.items():
            for t, kwh in values.items():
                copy.write_row((meter, channel, t, kwh, "A", 1, datetime(2025, 11, 1, tzinfo=UTC)))
    return db, data


def _round(x: Decimal) -> Decimal:
    return x.quantize(FOUR, rounding=ROUND_HALF_UP)


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def linear(values: dict[datetime, Decimal], t: datetime) -> Decimal:
    prev = max(u for u in values if u < t)
    nxt = min(u for u in values if u > t)
    i, n = (t - prev) // HALF, (nxt - prev) // HALF
    return _round(values[prev] + (values[nxt] - values[prev]) * i / n)


def like_day(values: dict[datetime, Decimal], t: datetime) -> Decimal:
    """The mean of the same local half hour on the same weekday of the 4 previous weeks ×
    the day's own level against that profile (mean of its readings / mean of the profile at
    the same half hours; 1 with fewer than 12 readings), within [0.5, 2]."""
    day = t.astimezone(LONDON).date()
    like = [u for w in range(1, 5) for u in day_starts(day - timedelta(days=7 * w)) if u in values]

    def profile(s: int) -> Decimal | None:
        at = [values[u] for u in like if slot(u) == s]
        return _mean(at) if at else None

    known = [u for u in day_starts(day) if u in values and profile(slot(u)) is not None]
    scale = Decimal(1)
    if len(known) >= 12:
        ratio = _mean([values[u] for u in known]) / _mean([profile(slot(u)) for u in known])
        scale = min(max(ratio, Decimal("0.5")), Decimal(2))
    return _round(profile(slot(t)) * scale)


def _estimates(db) -> dict[tuple, tuple]:
    rows = db.execute(
        "SELECT r.meter_id, r.channel, r.interval_start, r.kwh, e.method, e.inputs "
        "FROM meter.readings_a r JOIN audit.vee_estimate e USING (meter_id, channel, "
        "interval_start) WHERE r.quality = 'E' AND r.batch_id = 0 AND e.replaced_at IS NULL"
    ).fetchall()
    return {(m, c, t): (kwh, method, inputs) for m, c, t, kwh, method, inputs in rows}


def _flags(db) -> dict[str, set]:
    out: dict[str, set] = {}
    for meter, t, rule in db.execute(
        "SELECT meter_id, interval_start, rule FROM audit.vee_flag ORDER BY 1, 2"
    ):
        out.setdefault(rule, set()).add((meter, t))
    return out


def _snapshot(db) -> tuple:
    return (
        db.execute("SELECT * FROM meter.readings_a ORDER BY 1, 7, 2").fetchall(),
        db.execute("SELECT * FROM audit.vee_estimate ORDER BY 1").fetchall(),
        db.execute("SELECT * FROM audit.vee_flag ORDER BY 1, 2, 3, 4").fetchall(),
        db.execute("SELECT * FROM mart.vee_daily ORDER BY 1, 2, 3, 4").fetchall(),
        db.execute("SELECT * FROM mart.meter_day ORDER BY 1, 2, 3").fetchall(),
    )


def test_gaps_are_estimated_by_their_method_and_suspects_flagged_not_altered(series):
    db, data = series
    one = data[("SMR00001A", "E1")]
    result = vee.run(db, *WINDOW, run_id="first")

    got = _estimates(db)
    tuesday = {s: t for t in day_starts(TUESDAY) for s in [slot(t)]}
    expected: dict[datetime, tuple[Decimal, str]] = {}
    for length, slots in GAPS.items():
        for s in slots:
            t = tuesday[s]
            expected[t] = (
                (linear(one, t), "LINEAR") if length <= 2 else (like_day(one, t), "LIKE_DAY")
            )
    for day in (THURSDAY, SUNDAY):
        for t in day_starts(day):
            expected[t] = (like_day(one, t), "LIKE_DAY")
    assert len(day_starts(SUNDAY)) == 50
    mine = {t: (kwh, method) for (m, c, t), (kwh, method, _i) in got.items() if m == "SMR00001A"}
    assert mine == expected
    # Only SMR00001A E1 had gaps; the reactive channel's gap is left alone.
    assert {(m, c) for m, c, _t in got} == {("SMR00001A", "E1")}
    assert result.estimates == {"LINEAR": 3, "LIKE_DAY": 3 + 10 + 48 + 50}
    # A worked example: the single missing half hour is the mean of its neighbours.
    t = tuesday[10]
    assert got[("SMR00001A", "E1", t)][0] == _round((one[t - HALF] + one[t + HALF]) / 2)
    inputs = got[("SMR00001A", "E1", t)][2]
    assert (inputs["prev_kwh"], inputs["next_kwh"], inputs["gap_intervals"]) == (
        float(one[t - HALF]),
        float(one[t + HALF]),
        1,
    )
    sunday_inputs = got[("SMR00001A", "E1", day_starts(SUNDAY)[0])][2]
    assert sunday_inputs["like_days"] == ["2025-09-28", "2025-10-05", "2025-10-12", "2025-10-19"]
    assert sunday_inputs["gap_intervals"] == 50

    flags = _flags(db)
    spike = next(t for t in day_starts(WEDNESDAY) if slot(t) == SPIKE_SLOT)
    assert flags["SPIKE"] == {("SMR00001A", spike)}
    assert flags["HIGH"] == {("SMR00001A", spike)}
    assert "LOW" not in flags
    assert flags["FLAT"] == {("SMR00002A", t) for t in day_starts(date(2025, 10, 24))}
    assert flags["ZERO"] == {("SMR00002A", t) for t in day_starts(date(2025, 10, 25))}
    assert flags["GAP"] == {("SMR00001A", t) for t in expected}
    # Suspects are kept as read.
    assert db.execute(
        "SELECT kwh, quality FROM meter.readings_a WHERE meter_id = 'SMR00001A' "
        "AND channel = 'E1' AND interval_start = %s",
        (spike,),
    ).fetchone() == (SPIKE_KWH, "A")
    # The clock-change day keeps its 50 half hours, all estimated; the marts' day sums see them.
    assert db.execute(
        "SELECT expected, readings, estimated FROM mart.vee_daily WHERE meter_id = 'SMR00001A' "
        "AND channel = 'E1' AND local_date = %s",
        (SUNDAY,),
    ).fetchone() == (50, 50, 50)
    assert db.execute(
        "SELECT intervals, kwh FROM mart.meter_day WHERE meter_id = 'SMR00001A' "
        "AND local_date = %s",
        (SUNDAY,),
    ).fetchone() == (50, sum(expected[t][0] for t in day_starts(SUNDAY)))
    share = vee.estimated_share(db, SUNDAY, SUNDAY, "SMR00001A")
    # Energy channels only: E1 counts, the reactive Q1 does not.
    assert [(s.readings, s.estimated) for s in share] == [(50, 50)]


def test_rerunning_changes_nothing_and_a_late_actual_replaces_its_estimate(series):
    db, data = series
    vee.run(db, *WINDOW, run_id="first")
    before = _snapshot(db)
    again = vee.run(db, *WINDOW, run_id="second")
    assert (again.written, again.revised, again.replaced) == (0, 0, 0)
    assert _snapshot(db) == before

    # The actual of the single missing half hour arrives late, through promotion.
    t = next(u for u in day_starts(TUESDAY) if slot(u) == 10)
    estimate = _estimates(db)[("SMR00001A", "E1", t)][0]
    (batch,) = db.execute(
        """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,
                                         rows_read, rows_staged)
           VALUES ('spreadsheets', 'late.csv', '/landing/late.csv',
                   lpad(md5(random()::text), 64, '0'), 0, 'validated', 1, 1)
           RETURNING batch_id"""
    ).fetchone()
    db.execute(
        "INSERT INTO staging.reading (batch_id, row_no, meter_id, source, channel, "
        "interval_start, kwh, quality, ingested_at) "
        "VALUES (%s, 2, 'SMR00001A', 'A', 'E1', %s, 0.777, 'A', now())",
        (batch, t),
    )
    assert segregate.promote_batch(db, batch).superseded == 1
    assert db.execute(
        "SELECT kwh, quality, batch_id FROM meter.readings_a WHERE meter_id = 'SMR00001A' "
        "AND channel = 'E1' AND interval_start = %s",
        (t,),
    ).fetchone() == (Decimal("0.777"), "A", batch)

    late = vee.run(db, *WINDOW, run_id="third")
    # The day's other like-day estimates are revised: its own level now counts the actual.
    one = {**data[("SMR00001A", "E1")], t: Decimal("0.777")}
    longer = [u for u in day_starts(TUESDAY) if slot(u) in GAPS[3] + GAPS[10]]
    assert (late.replaced, late.written, late.revised) == (1, 13, 13)
    now = _estimates(db)
    assert {u: now[("SMR00001A", "E1", u)][0] for u in longer} == {
        u: like_day(one, u) for u in longer
    }
    assert db.execute(
        "SELECT count(*) FROM audit.vee_estimate WHERE replaced_by = 'revised' "
        "AND replacing_batch = 0 AND local_date = %s",
        (TUESDAY,),
    ).fetchone() == (13,)
    # The replaced estimate is kept in the audit trail, with what replaced it.
    assert db.execute(
        "SELECT kwh, method, replaced_by, replacing_kwh, replacing_quality, replacing_batch "
        "FROM audit.vee_estimate WHERE meter_id = 'SMR00001A' AND interval_start = %s",
        (t,),
    ).fetchall() == [(estimate, "LINEAR", "actual", Decimal("0.777"), "A", batch)]
    assert db.execute(
        "SELECT estimated FROM mart.vee_daily WHERE meter_id = 'SMR00001A' AND channel = 'E1' "
        "AND local_date = %s",
        (TUESDAY,),
    ).fetchone() == (1 + 2 + 3 + 10 - 1,)
    # And once more: nothing.
    settled = _snapshot(db)
    assert vee.run(db, *WINDOW, run_id="fourth").replaced == 0
    assert _snapshot(db) == settled


def test_the_sponsors_email_gives_the_share_of_estimated_readings(series, tmp_path):
    from meterflow import delivery

    db, _data = series
    plan = delivery.make_plan({"period": SUNDAY.isoformat(), "recipients": "bob@btl.com"})
    assert delivery.build(plan, tmp_path, conn=db).summary["estimated"] is None  # no VEE yet

    vee.run(db, *WINDOW, run_id="first")
    d = delivery.build(plan, tmp_path, conn=db)
    # Sunday: SMR00001A's 50 half hours estimated, SMR00002A's 50 read.
    line = "Estimated readings: 50 of 100 (50.00%); 0 readings flagged as suspect (kept as read)."
    assert line in d.text
    assert line in d.html
