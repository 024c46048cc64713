"""meter_deliver run through Airflow (dag.test): the period's email reaches the sponsor once.

Readings go into this session's warehouse; the email is read back from the local SMTP
server's Maildir (var/outbox/new) with the email stdlib.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_delivery import insert_batch, insert_readings, mails_to

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
UTC = UTC
DAY = datetime(2025, 1, 15, tzinfo=UTC)  # January: London local time is UTC
SUBJECT = "meterflow: smart-meter readings, Wed 15 Jan 2025"


@pytest.fixture
def one_day(db):
    """Every half hour of 15 Jan 2025 for one meter of each source, from one promoted batch."""
    batch = insert_batch(db, status="promoted", file_name="jan15.csv", rows=3 * 48)
    for source in "ABC":
        insert_readings(db, batch, source, f"SMR89134{source}", DAY, 48)
    return batch


@pytest.fixture
def reports(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("MF_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path / "reports"


def _address() -> str:
    return f"sponsor-{uuid.uuid4().hex[:10]}@example.net"


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_deliver")


def _run(dag, **conf) -> tuple[dict[str, str], dict]:
    """Run the DAG once; (task states, the deliver task's outcome)."""
    run = dag.test(run_conf=conf)
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    states = {task_id: ti.state for task_id, ti in tis.items()}
    outcome = tis["deliver"].xcom_pull(task_ids="deliver") if states["deliver"] == "success" else {}
    return states, outcome


def test_the_dag_runs_whenever_the_report_asset_is_published(airflow_db):
    dag = _dag()

    assert [a.name for a in dag.timetable.asset_condition.objects] == ["meter_report"]
    assert dag.max_active_runs == 1
    deliver = dag.get_task("deliver")
    assert deliver.retries >= 3
    assert deliver.retry_exponential_backoff > 1  # a multiplier: True (== 1) would not back off


def test_a_run_emails_the_period_once_and_a_second_run_sends_nothing_new(
    airflow_db, one_day, db, outbox, reports
):
    address = _address()
    dag = _dag()

    states, outcome = _run(dag, period="2025-01-15", recipients=address)

    assert states == {"check_schema": "success", "plan": "success", "deliver": "success"}
    assert outcome["status"] == "sent"
    (msg,) = mails_to(outbox, address)
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == address
    assert sorted(p.get_filename() for p in msg.iter_attachments()) == [
        "meterflow_20250115.pdf",
        "meterflow_20250115.xlsx",
    ]
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Wed 15 Jan 2025" in html and "Data quality: OK." in html

    states, outcome = _run(dag, period="2025-01-15", recipients=address)

    assert states["deliver"] == "success"
    assert outcome["status"] == "skipped"
    assert "already sent" in outcome["detail"]
    assert len(mails_to(outbox, address)) == 1
    assert db.execute(
        "SELECT status, send_no, period_start::text FROM audit.delivery WHERE recipients = %s",
        (address,),
    ).fetchall() == [("sent", 1, "2025-01-15")]


def test_without_recipients_the_sponsor_variable_decides_who_gets_it(
    airflow_db, one_day, outbox, reports, monkeypatch
):
    address = _address()
    monkeypatch.setenv("AIRFLOW_VAR_MF_SPONSOR_EMAIL", address)  # the Variable mf_sponsor_email
    monkeypatch.delenv("MF_SPONSOR_EMAIL", raising=False)

    states, outcome = _run(_dag(), period="2025-01-15")

    assert states["deliver"] == "success"
    assert outcome["recipients"] == address
    (msg,) = mails_to(outbox, address)
    assert msg["Subject"] == SUBJECT
