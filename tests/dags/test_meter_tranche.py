"""meter_tranche runs through Airflow (dag.test): a tranche of whole eligible sites goes out as
a file on S3 and comes back as an approval file through the approvals landing feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterflow import ingest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
# eligible since (oldest first): site P (2 meters), site Q (3, one excluded), site R (2), T (1)
REGISTRY = [
    ("SMR10001A", "P", "2026-01-01"),
    ("SMR10002A", "P", "2026-01-01"),
    ("SMR10003A", "Q", "2026-01-02"),
    ("SMR10004B", "Q", "2026-01-02"),
    ("SMR10005C", "Q", "2026-01-02"),
    ("SMR10006A", "R", "2026-01-03"),
    ("SMR10007A", "R", "2026-01-03"),
    ("SMR10008A", "T", "2026-01-04"),
]


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag(dag_id)


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.fixture
def registry(db, landing):
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO meter.meter (meter_id, source, site, region) "
            "VALUES (%s, right(%s, 1), %s, 'north')",
            [(m, m, s) for m, s, _ in REGISTRY],
        )
    db.execute("SELECT meter.judge_loaded()")
    with db.cursor() as cur:
        cur.executemany(
            "UPDATE meter.meter SET status_since = %s::timestamptz WHERE meter_id = %s",
            [(d, m) for m, _, d in REGISTRY],
        )
    excl = landing / "exclusions_todo" / "todo_1.txt"
    excl.parent.mkdir(parents=True)
    excl.write_text("HDR|WMS|1|20261201080000\nSMR10004B|TODO|ADD\nTRL|1\n")
    ingest.load_file(excl, landing_dir=landing)
    return db


def test_tranche_goes_out_whole_sites_and_round_trips_through_the_approval_file(
    airflow_db, registry, s3_client, bucket, landing
):
    db = registry
    run = _dag("meter_tranche").test(run_conf={"size": 3, "date": "2026-12-01"})

    assert set(_states(run).values()) == {"success"}
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("outbound/DCC/TRANCHE_DCC_000001_")
    lines = s3_client.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()
    header, rows = lines[0].split("|"), [r.split("|") for r in lines[1:-1]]
    assert header[:3] == ["HDR", "DCC", "1"] and header[4] == "2026-12-01"
    assert lines[-1] == "TRL|2"
    # P goes (oldest); Q is excluded (site of SMR10004B); R would make 4 of 3: never split
    assert rows == [["SMR10001A", "P", "north"], ["SMR10002A", "P", "north"]]
    selected = db.execute(
        "SELECT meter_id FROM meter.meter WHERE status = 'selected' ORDER BY 1"
    ).fetchall()
    assert selected == [("SMR10001A",), ("SMR10002A",)]

    # the system answers: the first approved, the second rejected with its reason
    approval = landing / "approvals" / "approval_0001.txt"
    approval.parent.mkdir(parents=True)
    approval.write_text(
        f"HDR|DCC|1|20261202100000|{header[2]}\n"
        f"{rows[0][0]}|APPROVED|\n"
        f"{rows[1][0]}|REJECTED|meter not found at the address\n"
        "TRL|2\n"
    )
    ingest.load_file(approval, landing_dir=landing)

    got = dict(
        db.execute(
            "SELECT meter_id, status || ': ' || status_reason FROM meter.meter WHERE site = 'P'"
        ).fetchall()
    )
    assert got == {
        "SMR10001A": "notified: approved by DCC",
        "SMR10002A": "eligible: returned by DCC: meter not found at the address",
    }
    assert db.execute(
        "SELECT from_status, to_status, actor FROM meter.status_history "
        "WHERE meter_id = 'SMR10002A' ORDER BY history_id DESC LIMIT 2"
    ).fetchall() == [
        ("selected", "eligible", "file:approval_0001.txt"),
        ("eligible", "selected", f"tranche:{_returned_tranche(db)}"),
    ]


def _returned_tranche(db) -> int:
    return db.execute("SELECT tranche_id FROM meter.tranche").fetchone()[0]
