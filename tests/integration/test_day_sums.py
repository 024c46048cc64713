"""Aggregate on write against the real PostgreSQL: promotion keeps the day sums of the local
days it wrote (mart.meter_day, mart.slot_day, mart.day_sum; V013) and the mart refresh builds
from them, reading no readings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from meterflow import aggregation, segregate, tariffs
from tests.integration.test_segregate import _batch

pytestmark = pytest.mark.integration

DAY = date(2025, 1, 15)  # a Wednesday in GMT: the local day is the UTC day
T0 = datetime(2025, 1, 15, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def _day(meter: str, kwh: Decimal, quality: str = "A", day_start: datetime = T0) -> list[tuple]:
    return [(meter, day_start + i * HALF_HOUR, kwh, quality) for i in range(48)]


def _meter_day(db, meter: str, day: date = DAY) -> tuple | None:
    return db.execute(
        "SELECT kwh, intervals, peak_kwh, peak_n, tariffs FROM mart.meter_day "
        "WHERE meter_id = %s AND local_date = %s",
        (meter, day),
    ).fetchone()


def _consumption(db, meter: str, day: date = DAY) -> Decimal | None:
    row = db.execute(
        "SELECT kwh FROM mart.consumption_daily WHERE meter_id = %s AND local_date = %s",
        (meter, day),
    ).fetchone()
    return row[0] if row else None


def test_promotion_keeps_the_day_sums_of_the_local_days_it_wrote(db):
    shipped = tariffs.load()
    batch = _batch(db, _day("SMR89140A", Decimal("0.5")))

    result = segregate.promote_batch(db, batch)

    assert result.day_sums == 1
    kwh, intervals, peak_kwh, peak_n, fingerprint = _meter_day(db, "SMR89140A")
    assert (kwh, intervals, fingerprint) == (Decimal("24.0"), 48, aggregation.fingerprint(shipped))
    # The shipped "peak" tariff: weekdays 16:00-19:00 local, six half hours of 0.5 kWh.
    peak = list(shipped.bits()).index("peak")
    assert (peak_kwh[peak], peak_n[peak]) == (Decimal("3.0"), 6)
    slots = db.execute(
        "SELECT count(*), sum(kwh), sum(readings) FROM mart.slot_day WHERE local_date = %s",
        (DAY,),
    ).fetchone()
    assert slots == (48, Decimal("24.0"), 48)


def test_the_refresh_after_a_promotion_reads_the_day_sums_not_the_readings(db):
    segregate.promote_batch(db, _batch(db, _day("SMR89140A", Decimal("0.5"))))

    done = aggregation.refresh(db, {"A": [DAY]}, tariffs.load())

    assert done.summed == 0 and done.staged_groups == 1
    row = db.execute(
        "SELECT peak_mean_kwh, offpeak_mean_kwh, intervals FROM mart.peak_daily "
        "WHERE tariff = 'peak' AND meter_id = 'SMR89140A' AND local_date = %s",
        (DAY,),
    ).fetchone()
    assert row == (Decimal("0.5"), Decimal("0.5"), 48)


def test_a_superseding_batch_updates_the_day_sums_and_the_next_refresh_the_marts(db):
    shipped = tariffs.load()
    segregate.promote_batch(db, _batch(db, _day("SMR89140B", Decimal("1"), "E")))
    aggregation.refresh(db, {"B": [DAY]}, shipped)
    assert _consumption(db, "SMR89140B") == Decimal("48")

    actual = _day("SMR89140B", Decimal("1"), "A")
    actual[0] = ("SMR89140B", T0, Decimal("3"), "A")  # one actual reading differs
    result = segregate.promote_batch(db, _batch(db, actual))
    again = aggregation.refresh(db, {"B": [DAY]}, shipped)

    assert result.superseded == 48 and _meter_day(db, "SMR89140B")[0] == Decimal("50")
    assert again.skipped == 0 and again.summed == 0
    assert _consumption(db, "SMR89140B") == Decimal("50")


def test_a_day_changed_by_hand_reaches_the_marts_only_with_rescan(db):
    shipped = tariffs.load()
    segregate.promote_batch(db, _batch(db, _day("SMR89141A", Decimal("1"))))
    aggregation.refresh(db, {"A": [DAY]}, shipped)
    db.execute("UPDATE meter.readings_a SET kwh = 2 WHERE meter_id = 'SMR89141A'")

    plain = aggregation.refresh(db, {"A": [DAY]}, shipped)
    assert plain.skipped == 1 and _consumption(db, "SMR89141A") == Decimal("48")

    rescanned = aggregation.refresh(db, {"A": [DAY]}, shipped, rescan=True)
    assert rescanned.summed == 1 and _consumption(db, "SMR89141A") == Decimal("96")


def test_a_broken_tariffs_file_does_not_hold_a_batch_back_and_leaves_its_days_to_the_refresh(
    db, monkeypatch
):
    shipped = tariffs.load()
    segregate.promote_batch(db, _batch(db, _day("SMR89142C", Decimal("1"), "E")))
    assert db.execute("SELECT count(*) FROM mart.day_sum WHERE source = 'C'").fetchone() == (1,)

    def broken(*_args, **_kwargs):  # a tariffs.yaml being edited: cannot be caused per test
        raise tariffs.TariffError("tariffs.yaml: not valid YAML: mapping values are not allowed")

    monkeypatch.setattr(tariffs, "load", broken)
    result = segregate.promote_batch(db, _batch(db, _day("SMR89142C", Decimal("2"))))
    monkeypatch.undo()

    assert result.status == "promoted" and result.day_sums == 0
    assert db.execute("SELECT count(*) FROM mart.day_sum WHERE source = 'C'").fetchone() == (0,)
    done = aggregation.refresh(db, {"C": [DAY]}, shipped)
    assert done.summed == 1 and _consumption(db, "SMR89142C") == Decimal("96")


def test_the_rescan_param_reaches_the_refresh_through_the_runs_plan():
    plan = aggregation.plan_run(
        params={"date_from": "2025-01-15", "rescan": True},
        batch_ids=None,
        touched=None,
        now=datetime(2025, 1, 20, tzinfo=UTC),
        tariffs=tariffs.load(),
    )
    carried = aggregation.Plan.from_dict(plan.to_dict())  # as XCom carries it between tasks
    assert (plan.rescan, carried.rescan, carried.days["A"]) == (True, True, [DAY])
