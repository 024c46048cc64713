"""meter_peak_report and meter_consumption_report run through Airflow (dag.test) on fixture
readings in the session warehouse: marts filled, charts written locally and to the session
bucket, the meter_report Asset announced with its period and files."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import time_ns
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
PNG = b"\x89PNG\r\n\x1a\n"
# meter: (source, region); kWh of the interval i of a local day = (i + 1) / 100 for every meter.
METERS = {"SMR00001A": ("A", "north"), "SMR00002B": ("B", "south"), "SMR00003C": ("C", "north")}
DAYS = [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)]  # Sat, clocks forward, Mon
TABLE = {"A": "meter.readings_a", "B": "meter.readings_b", "C": "meter.readings_c"}


def _day_intervals(day: date) -> list[datetime]:
    start = datetime.combine(day, time(), LONDON).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), LONDON).astimezone(UTC)
    return [
        start + timedelta(minutes=30 * i) for i in range((end - start) // timedelta(minutes=30))
    ]


@pytest.fixture
def readings(db):
    for meter, (source, region) in METERS.items():
        db.execute(
            "INSERT INTO meter.meter (meter_id, source, region) VALUES (%s, %s, %s)",
            (meter, source, region),
        )
        lo = datetime(2025, 3, 28, tzinfo=UTC)
        db.execute(
            "SELECT meter.ensure_partitions(%s::regclass, %s, %s)",
            (TABLE[source], lo, lo + timedelta(days=5)),
        )
        rows = [
            (meter, start, (i + 1) / 100)
            for day in DAYS
            for i, start in enumerate(_day_intervals(day))
        ]
        with db.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE[source]} (meter_id, interval_start, kwh, quality, batch_id, "
                "ingested_at) VALUES (%s, %s, %s, 'A', 1, now())",
                rows,
            )
    return db


@pytest.fixture
def reports(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "reports"
    monkeypatch.setenv("MF_REPORTS_DIR", str(path))
    return path


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag(dag_id)


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _latest_report_event() -> dict | None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "meter_report")
            .order_by(AssetEvent.id.desc())
            .limit(1)
        ).first()
        return dict(event.extra) if event else None


def _keys(s3_client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_peak_report_run_fills_the_marts_writes_charts_and_announces_the_report(
    airflow_db, readings, reports, bucket, s3_client
):
    run = _dag("meter_peak_report").test(
        run_conf={"date_from": "2025-03-29", "date_to": "2025-03-31", "tariff": "peak"}
    )

    assert _states(run) == dict.fromkeys(
        ["check_schema", "plan", "refresh_marts", "charts", "announce"], "success"
    )
    # Every tariff of tariffs.yaml (peak, economy7), every meter, every day.
    assert readings.execute("SELECT count(*) FROM mart.peak_daily").fetchone()[0] == 2 * 3 * 3
    # Monday 31 March, local 16:00-18:30 = intervals 32..37: (33+...+38) / 6 / 100 = 0.355.
    peak, n_peak, n = readings.execute(
        "SELECT peak_mean_kwh, peak_intervals, intervals FROM mart.peak_daily "
        "WHERE tariff = 'peak' AND meter_id = 'SMR00002B' AND local_date = '2025-03-31'"
    ).fetchone()
    assert (float(peak), n_peak, n) == (0.355, 6, 48)
    intervals = readings.execute(
        "SELECT local_date, intervals FROM mart.consumption_daily WHERE meter_id = 'SMR00001A' "
        "ORDER BY local_date"
    ).fetchall()
    assert intervals == [(DAYS[0], 48), (DAYS[1], 46), (DAYS[2], 48)]
    regions = readings.execute(
        "SELECT region, sum(meters) FROM mart.consumption_by_region GROUP BY region ORDER BY 1"
    ).fetchall()
    assert regions == [("north", 2 * 3), ("south", 1 * 3)]

    names = [
        "consumption_by_region.png",
        "load_profile_peak.png",
        "meter_heatmap.png",
        "peak_means_peak.png",
    ]
    folder = reports / "2025-03-31"
    assert sorted(p.name for p in folder.iterdir()) == names
    for name in names:
        assert (folder / name).read_bytes()[:8] == PNG
    assert _keys(s3_client, bucket) == [f"reports/2025-03-31/{n}" for n in names]
    body = s3_client.get_object(Bucket=bucket, Key="reports/2025-03-31/peak_means_peak.png")
    assert body["Body"].read() == (folder / "peak_means_peak.png").read_bytes()

    event = _latest_report_event()
    assert event is not None
    assert (event["period_start"], event["period_end"]) == ("2025-03-29", "2025-03-31")
    assert sorted(event["files"]) == [str(folder / n) for n in names]


@pytest.fixture
def solar(readings):
    """SMR00001A also exports (B1: 0.25 kWh a half hour from local 10:00 to 13:30) and reports
    reactive energy (Q1: 0.5 kVArh every half hour) on 31 March."""
    rows = [
        (channel, start, value)
        for i, start in enumerate(_day_intervals(DAYS[2]))
        for channel, value in (("B1", 0.25 if 20 <= i < 28 else 0.0), ("Q1", 0.5))
    ]
    with readings.cursor() as cur:
        cur.executemany(
            "INSERT INTO meter.readings_a (meter_id, channel, interval_start, kwh, quality, "
            "batch_id, ingested_at) VALUES ('SMR00001A', %s, %s, %s, 'A', 2, now())",
            rows,
        )
    return readings


def test_a_peak_report_run_reports_import_with_export_beside_it_and_no_reactive_kwh(
    airflow_db, solar, reports, bucket
):
    run = _dag("meter_peak_report").test(
        run_conf={"date_from": "2025-03-31", "date_to": "2025-03-31", "sources": ["A"]}
    )

    assert _states(run)["refresh_marts"] == "success"
    # Import is E1 alone: (1 + ... + 48) / 100; export the eight sunny half hours; Q1 nowhere.
    assert solar.execute(
        "SELECT kwh, intervals, export_kwh, export_intervals FROM mart.consumption_daily "
        "WHERE meter_id = 'SMR00001A' AND local_date = '2025-03-31'"
    ).fetchone() == (Decimal("11.76"), 48, Decimal("2.00"), 48)
    peak = solar.execute(
        "SELECT peak_mean_kwh, total_kwh FROM mart.peak_daily "
        "WHERE tariff = 'peak' AND meter_id = 'SMR00001A' AND local_date = '2025-03-31'"
    ).fetchone()
    assert (float(peak[0]), peak[1]) == (0.355, Decimal("11.76"))
    assert solar.execute(
        "SELECT kwh, export_kwh FROM mart.consumption_by_region "
        "WHERE region = 'north' AND local_date = '2025-03-31'"
    ).fetchone() == (Decimal("11.76"), Decimal("2.00"))
    noon = solar.execute(
        "SELECT kwh, export_kwh, export_readings FROM mart.load_profile_daily "
        "WHERE source = 'A' AND local_date = '2025-03-31' AND slot = 24"
    ).fetchone()
    assert noon == (Decimal("0.25"), Decimal("0.25"), 1)


def test_a_manual_run_with_rescan_brings_readings_changed_by_hand_into_the_marts(
    airflow_db, readings, reports, bucket
):
    conf = {"date_from": "2025-03-31", "date_to": "2025-03-31", "sources": ["B"]}
    first = _dag("meter_peak_report").test(run_conf=conf)
    assert _states(first)["refresh_marts"] == "success"
    # A correction made straight in SQL, not through promotion: the day sums do not see it.
    readings.execute(
        "UPDATE meter.readings_b SET kwh = kwh + 1 WHERE meter_id = 'SMR00002B' "
        "AND interval_start >= '2025-03-31 00:00+01' AND interval_start < '2025-04-01 00:00+01'"
    )
    query = (
        "SELECT kwh FROM mart.consumption_daily WHERE meter_id = 'SMR00002B' "
        "AND local_date = '2025-03-31'"
    )
    before = readings.execute(query).fetchone()[0]

    plain = _dag("meter_peak_report").test(run_conf=conf)
    assert _states(plain)["refresh_marts"] == "success"
    assert readings.execute(query).fetchone()[0] == before

    rescanned = _dag("meter_peak_report").test(run_conf={**conf, "rescan": True})
    assert _states(rescanned)["refresh_marts"] == "success"
    assert readings.execute(query).fetchone()[0] == before + 48  # +1 kWh in each half hour


def test_scheduled_peak_report_covers_the_seven_days_before_its_run(
    airflow_db, readings, reports, bucket
):
    # The 06:00 London run of Tuesday 1 April 2025 (05:00 UTC) reports 25-31 March. The run id
    # comes from run_after and the metadata DB is shared by sessions: a few seconds later each
    # time (any moment before local midnight reports the same days).
    run_after = datetime(2025, 4, 1, 5, tzinfo=UTC) + timedelta(
        microseconds=time_ns() // 1000 % 10**10
    )
    run = _dag("meter_peak_report").test(run_after=run_after)

    assert _states(run)["announce"] == "success"
    event = _latest_report_event()
    assert (event["period_start"], event["period_end"]) == ("2025-03-25", "2025-03-31")
    days = readings.execute(
        "SELECT DISTINCT local_date FROM mart.consumption_daily ORDER BY 1"
    ).fetchall()
    assert [d for (d,) in days] == DAYS


def test_consumption_report_run_writes_the_meters_csv_and_chart_and_uploads_them(
    airflow_db, readings, reports, bucket, s3_client
):
    run = _dag("meter_consumption_report").test(
        run_conf={
            "meter_id": "SMR00001A",
            "period": "current_day",
            "at": "2025-03-30T20:00:00+00:00",
        }
    )

    assert _states(run) == {"report": "success"}
    folder = reports / "2025-03-30"
    stem = "consumption_SMR00001A_current_day_2025-03-30"
    assert sorted(p.name for p in folder.iterdir()) == [f"{stem}.csv", f"{stem}.png"]
    lines = (folder / f"{stem}.csv").read_text().splitlines()
    assert len(lines) == 1 + 46  # the clocks went forward: 46 half hours
    assert lines[1].startswith(
        "SMR00001A,E1,import,2025-03-30T00:00:00+00:00,2025-03-30T00:00:00+00:00"
    )
    assert lines[-1].split(",")[4] == "2025-03-30T23:30:00+01:00"
    assert (folder / f"{stem}.png").read_bytes()[:8] == PNG
    assert _keys(s3_client, bucket) == [
        f"reports/2025-03-30/{stem}.csv",
        f"reports/2025-03-30/{stem}.png",
    ]


def test_consumption_report_of_an_unknown_meter_fails_without_retrying(
    airflow_db, readings, reports, bucket
):
    run = _dag("meter_consumption_report").test(
        run_conf={"meter_id": "SMR99999A", "period": "previous_month", "at": "2025-04-02T09:00:00Z"}
    )

    assert _states(run) == {"report": "failed"}
    assert not reports.exists() or not any(reports.rglob("*.csv"))


def test_consumption_report_offers_every_period_of_the_aggregation():
    from meterflow import aggregation

    dag = _dag("meter_consumption_report")
    assert tuple(dag.params.get_param("period").schema["enum"]) == aggregation.PERIODS
