"""meter_vee runs through Airflow (dag.test) on fixture readings in the session warehouse: a
manual run with a meter and a date range estimates that meter's gaps (and no one else's),
flags them, recomputes the marts of the day, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
DAY = date(2025, 6, 11)  # a Wednesday
METERS = ("SMR00001A", "SMR00002A")


def _day(day: date) -> list[datetime]:
    start = datetime.combine(day, time(), LONDON).astimezone(UTC)
    return [start + timedelta(minutes=30 * i) for i in range(48)]


@pytest.fixture
def readings(db):
    """Two meters reading 0.1 + i/100 kWh in half hour i of every day from 1 May to 12 June,
    each missing half hours 20 and 21 of 11 June (a 1-hour gap)."""
    db.execute(
        "SELECT meter.ensure_partitions('meter.readings_a'::regclass, %s, %s)",
        (datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)),
    )
    with db.cursor().copy(
        "COPY meter.readings_a (meter_id, channel, interval_start, kwh, quality, batch_id, "
        "ingested_at) FROM STDIN"
    ) as copy:
        for meter in METERS:
            for n in range(43):
                day = date(2025, 5, 1) + timedelta(days=n)
                for i, start in enumerate(_day(day)):
                    if day == DAY and i in (20, 21):
                        continue
                    copy.write_row(
                        (meter, "E1", start, Decimal(10 + i) / 100, "A", 1, datetime.now(UTC))
                    )
    for meter in METERS:
        db.execute("INSERT INTO meter.meter (meter_id, source) VALUES (%s, 'A')", (meter,))
    return db


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag(dag_id)


def _estimates(db) -> list[tuple]:
    return db.execute(
        "SELECT meter_id, interval_start, kwh FROM meter.readings_a WHERE quality = 'E' "
        "ORDER BY 1, 2"
    ).fetchall()


def test_a_manual_run_estimates_one_meters_gap_and_a_rerun_changes_nothing(airflow_db, readings):
    conf = {"date_from": DAY.isoformat(), "date_to": DAY.isoformat(), "meter": "SMR00001A"}
    run = _dag("meter_vee").test(run_conf=conf)

    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "check_schema": "success",
        "validate_and_estimate": "success",
    }
    # Linear between half hour 19 (0.29) and 22 (0.32): 0.30 and 0.31, only for the meter asked.
    slots = _day(DAY)
    assert _estimates(readings) == [
        ("SMR00001A", slots[20], Decimal("0.3000")),
        ("SMR00001A", slots[21], Decimal("0.3100")),
    ]
    assert readings.execute(
        "SELECT method, count(*) FROM audit.vee_estimate GROUP BY 1"
    ).fetchall() == [("LINEAR", 2)]
    assert readings.execute("SELECT rule, count(*) FROM audit.vee_flag GROUP BY 1").fetchall() == [
        ("GAP", 2)
    ]
    # The marts of the day count the estimates: a whole day of 48 half hours.
    assert readings.execute(
        "SELECT intervals, kwh FROM mart.consumption_daily WHERE meter_id = 'SMR00001A' "
        "AND local_date = %s",
        (DAY,),
    ).fetchone() == (48, sum(Decimal(10 + i) / 100 for i in range(48)))
    assert readings.execute(
        "SELECT readings, estimated FROM mart.estimated_share_daily WHERE local_date = %s",
        (DAY,),
    ).fetchone() == (48, 2)

    before = readings.execute("SELECT * FROM audit.vee_estimate").fetchall()
    again = _dag("meter_vee").test(run_conf=conf)
    assert {ti.state for ti in again.get_task_instances()} == {"success"}
    assert readings.execute("SELECT * FROM audit.vee_estimate").fetchall() == before
