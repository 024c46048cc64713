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


# --- channels: consumption is import, export beside it, non-energy in no kWh ----------------

SOLAR = "SMR89150A"  # E1 general, E2 controlled load (night), B1 rooftop solar, Q1 reactive
PLAIN = "SMR89151A"  # E1 only
E1, E2_NIGHT, B1_NOON, Q1 = Decimal("0.4"), Decimal("0.2"), Decimal("0.5"), Decimal("0.3")


def _solar_rows(channels: str = "E1 E2 B1 Q1") -> list[str]:
    """CSV lines (meter, channel, local time, kWh) of 15 Jan 2025 (GMT: local = UTC):
    SOLAR's E1 0.4 all day, E2 0.2 from 00:00 to 06:30 (14 half hours), B1 0.5 from 10:00 to
    14:30 (10 half hours) and 0 otherwise, Q1 0.3 kVArh all day; PLAIN's E1 0.1 all day."""
    lines = []
    for i in range(48):
        at = f"15/01/2025 {i // 2:02d}:{i % 2 * 30:02d}"
        values = {
            "E1": E1,
            "E2": E2_NIGHT if i < 14 else None,
            "B1": B1_NOON if 20 <= i < 30 else Decimal("0"),
            "Q1": Q1,
        }
        for channel in channels.split():
            if values[channel] is not None:
                lines.append(f"{SOLAR},{channel},{at},{values[channel]}")
        if "E1" in channels:
            lines.append(f"{PLAIN},E1,{at},0.1")
    return lines


def _ingest_and_promote(db, landing, name: str, lines: list[str]) -> int:
    """Load a long CSV (meter_id, channel, timestamp, reading_kWh) through ingest and promote
    it (the quality gate's verdict set by hand: the gate has its own tests)."""
    from meterflow import ingest

    path = landing / "spreadsheets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("meter_id,channel,timestamp,reading_kWh\n" + "\n".join(lines) + "\n")
    result = ingest.load_file(path, landing_dir=landing)
    assert result.rows_rejected == 0, result
    db.execute(
        "UPDATE audit.load_batch SET status = 'validated' WHERE batch_id = %s", (result.batch_id,)
    )
    assert segregate.promote_batch(db, result.batch_id).status == "promoted"
    return result.batch_id


def _daily(db, meter: str) -> tuple:
    return db.execute(
        "SELECT kwh, intervals, completeness, export_kwh, export_intervals "
        "FROM mart.consumption_daily WHERE meter_id = %s AND local_date = %s",
        (meter, DAY),
    ).fetchone()


def test_daily_consumption_is_e1_plus_e2_with_b1_export_beside_it_and_q1_in_no_kwh(
    db, landing, bucket
):
    shipped = tariffs.load()
    _ingest_and_promote(db, landing, "solar.csv", _solar_rows())

    aggregation.refresh(db, {"A": [DAY]}, shipped)

    # Q1 is stored (48 readings of 0.3 kVArh) ...
    assert db.execute(
        "SELECT count(*), sum(kwh) FROM meter.readings_a WHERE meter_id = %s AND channel = 'Q1'",
        (SOLAR,),
    ).fetchone() == (48, Decimal("14.4"))
    # ... and summed nowhere: import is E1 48 x 0.4 + E2 14 x 0.2 = 22.0 kWh over 48 half hours
    # (E1 and E2 of one half hour are one interval), export B1 10 x 0.5 = 5.0 kWh.
    assert _daily(db, SOLAR) == (Decimal("22.0"), 48, Decimal("1.0000"), Decimal("5.0"), 48)
    assert _daily(db, PLAIN) == (Decimal("4.8"), 48, Decimal("1.0000"), None, 0)
    # Peak 16:00-19:00 (E1 only then): 6 x 0.4 over 6 half hours; off-peak the rest of import.
    peak = db.execute(
        "SELECT peak_mean_kwh, offpeak_mean_kwh, peak_intervals, total_kwh FROM mart.peak_daily "
        "WHERE tariff = 'peak' AND meter_id = %s AND local_date = %s",
        (SOLAR, DAY),
    ).fetchone()
    assert peak[0] == Decimal("0.4") and peak[2] == 6 and peak[3] == Decimal("22.0")
    assert abs(peak[1] - Decimal("19.6") / 42) < Decimal("1e-9")
    # The roll-ups and the per-source view carry the export beside the import.
    for table, key in (("consumption_weekly", "week_start"), ("consumption_monthly", "month")):
        assert db.execute(
            f"SELECT kwh, export_kwh FROM mart.{table} WHERE meter_id = %s", (SOLAR,)
        ).fetchone() == (Decimal("22.0"), Decimal("5.0")), table
        assert db.execute(
            f"SELECT export_kwh FROM mart.{table} WHERE meter_id = %s", (PLAIN,)
        ).fetchone() == (None,), key
    assert db.execute(
        "SELECT kwh, export_kwh, meters FROM mart.consumption_by_region WHERE local_date = %s",
        (DAY,),
    ).fetchone() == (Decimal("26.8"), Decimal("5.0"), 2)
    assert db.execute(
        "SELECT kwh, export_kwh, meters, export_meters FROM mart.source_consumption_daily "
        "WHERE local_date = %s",
        (DAY,),
    ).fetchone() == (Decimal("26.8"), Decimal("5.0"), 2, 1)
    # The load profile: at 00:00 import E1 + E2 + PLAIN's E1, no export; at 12:00 the solar.
    profile = dict(
        (slot, rest)
        for slot, *rest in db.execute(
            "SELECT slot, kwh, readings, export_kwh, export_readings FROM mart.load_profile_daily "
            "WHERE local_date = %s AND slot IN (0, 24)",
            (DAY,),
        )
    )
    assert profile == {
        0: [Decimal("0.7"), 3, Decimal("0"), 1],
        24: [Decimal("0.5"), 2, Decimal("0.5"), 1],
    }


def test_export_arriving_in_a_later_file_joins_the_day_without_changing_its_import(
    db, landing, bucket
):
    shipped = tariffs.load()
    _ingest_and_promote(db, landing, "import.csv", _solar_rows("E1 E2"))
    aggregation.refresh(db, {"A": [DAY]}, shipped)
    assert _daily(db, SOLAR) == (Decimal("22.0"), 48, Decimal("1.0000"), None, 0)

    _ingest_and_promote(db, landing, "export.csv", _solar_rows("B1"))
    again = aggregation.refresh(db, {"A": [DAY]}, shipped)

    assert again.skipped == 0 and again.summed == 0  # the promotion summed the day again
    assert _daily(db, SOLAR) == (Decimal("22.0"), 48, Decimal("1.0000"), Decimal("5.0"), 48)


def test_a_meter_day_with_only_export_has_consumption_zero_and_no_peak_means(db, landing, bucket):
    _ingest_and_promote(db, landing, "export_only.csv", _solar_rows("B1 Q1"))

    aggregation.refresh(db, {"A": [DAY]}, tariffs.load())

    assert _daily(db, SOLAR) == (Decimal("0"), 0, Decimal("0.0000"), Decimal("5.0"), 48)
    assert db.execute("SELECT count(*) FROM mart.peak_daily").fetchone() == (0,)


def test_a_meter_day_with_only_non_energy_readings_is_in_no_mart(db, landing, bucket):
    _ingest_and_promote(db, landing, "reactive.csv", _solar_rows("Q1"))

    aggregation.refresh(db, {"A": [DAY]}, tariffs.load())

    assert db.execute("SELECT count(*) FROM mart.meter_day").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM mart.consumption_daily").fetchone() == (0,)
    # the day is summed all the same: its readings are counted, none of them as kWh
    assert db.execute(
        "SELECT readings FROM mart.day_sum WHERE local_date = %s", (DAY,)
    ).fetchone() == (48,)
    assert db.execute(
        "SELECT sum(kwh), sum(readings) FROM mart.load_profile_daily WHERE local_date = %s",
        (DAY,),
    ).fetchone() == (Decimal("0"), 0)


def test_a_meter_whose_only_import_channel_is_e2_has_its_consumption_counted(db, landing, bucket):
    _ingest_and_promote(db, landing, "e2.csv", _solar_rows("E2"))

    aggregation.refresh(db, {"A": [DAY]}, tariffs.load())

    # 14 half hours of 0.2 kWh (00:00-06:30): no E1 to add them to
    assert _daily(db, SOLAR) == (Decimal("2.8"), 14, Decimal("0.2917"), None, 0)
