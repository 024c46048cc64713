"""Alerts a person can live with: one per incident, grouped per run, to the data team, resolved
when it clears — through the real warehouse and the real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterflow import alerts, ingest, readers

pytestmark = pytest.mark.integration

TEAM = "data-team@example.net"
NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)


def mails(outbox: Path, needle: str) -> list[email.message.EmailMessage]:
    """Every message in the Maildir whose subject or body holds ``needle``."""
    found = []
    for path in sorted((outbox / "new").glob("*")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = msg.get_body(("html", "plain"))
        if needle in str(msg["Subject"]) or (body and needle in body.get_content()):
            found.append(msg)
    return found


def wait_for_mail(outbox: Path, needle: str, timeout: float = 10) -> email.message.EmailMessage:
    """The first message holding ``needle`` (AssertionError if none arrives in time)."""
    found = settle(outbox, needle, 1, timeout)
    assert found, f"no email containing {needle!r} arrived in {outbox}/new"
    return found[0]


def settle(outbox: Path, needle: str, expected: int, timeout: float = 10) -> list:
    """The messages holding ``needle`` once ``expected`` arrived (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while len(mails(outbox, needle)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # anything more that was going to arrive
    return mails(outbox, needle)


@dataclass
class TI:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1


def failure(dag_id: str, task_id: str, run_id: str, exc: BaseException, map_index: int = -1):
    return {"ti": TI(dag_id, task_id, run_id, map_index), "exception": exc}


@pytest.fixture
def team(monkeypatch):
    monkeypatch.setenv("MF_ALERT_EMAIL", TEAM)
    return TEAM


def test_a_task_failing_run_after_run_alerts_once_with_its_error_and_link(db, outbox, team):
    task = f"t_{uuid.uuid4().hex[:8]}"
    for n in range(3):  # the same failure in three scheduled runs
        alerts.task_failed(
            failure("meter_peak_report", task, f"scheduled__{n}", KeyError("tariff 'peak2'"))
        )

    [msg] = settle(outbox, task, 1)

    assert msg["To"] == TEAM
    assert msg["Subject"] == "[meterflow] meter_peak_report: 1 task failing"
    body = msg.get_body(("html",)).get_content()
    assert f"meter_peak_report.{task} failed: KeyError: &quot;tariff &#x27;peak2&#x27;&quot;" in (
        body
    )
    assert f"/dags/meter_peak_report/runs/scheduled__0/tasks/{task}" in body
    assert "Traceback" not in body
    assert db.execute(
        "SELECT occurrences, state FROM audit.alert WHERE incident LIKE %s", (f"%{task}%",)
    ).fetchall() == [(3, "open")]


def test_the_task_succeeding_again_sends_one_resolved_message(db, outbox, team):
    task = f"t_{uuid.uuid4().hex[:8]}"
    for n in range(2):
        alerts.task_failed(failure("meter_deliver", task, f"r{n}", TimeoutError("smtp")))
    alerts.task_succeeded({"ti": TI("meter_deliver", task, "r2")})
    alerts.task_succeeded({"ti": TI("meter_deliver", task, "r3")})  # nothing more to say

    found = settle(outbox, task, 2)

    subjects = sorted(str(m["Subject"]) for m in found)
    assert subjects == [
        "[meterflow] meter_deliver: 1 task failing",
        f"[meterflow] resolved: meter_deliver.{task}",
    ]
    resolved = next(m for m in found if "resolved" in str(m["Subject"]))
    assert "after 2 failed run(s)" in resolved.get_body(("html",)).get_content()
    assert db.execute(
        "SELECT state FROM audit.alert WHERE incident LIKE %s", (f"%{task}%",)
    ).fetchall() == [("resolved",)]


def test_files_that_fail_in_one_run_arrive_as_one_message_naming_each_once(
    db, outbox, team, landing, monkeypatch
):
    run = f"scheduled__{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "meter_ingest")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", run)
    sheets = landing / "spreadsheets"
    sheets.mkdir()
    names = [f"bad-{n}.xlsx" for n in range(3)]
    for name in names:
        (sheets / name).write_bytes(b"PK\x03\x04 not a workbook " + name.encode())
        with pytest.raises(readers.UnreadableFile):
            ingest.load_file(sheets / name, landing_dir=landing, now=NOW)
        # the mapped task's failure callback: the file's incident is already recorded
        alerts.task_failed(
            failure("meter_ingest", "load", run, readers.UnreadableFile(name), map_index=0)
        )

    assert alerts.flush() == 3  # the run's last step
    assert alerts.flush() == 0  # nothing new: no second message

    [msg] = settle(outbox, run, 1)
    assert msg["Subject"] == "[meterflow] meter_ingest: 3 files failed"
    body = msg.get_body(("html",)).get_content()
    for name in names:
        assert body.count(f"spreadsheets/{name} moved to failed/") == 1
    assert f"/dags/meter_ingest/runs/{run}/tasks/load" in body


def test_with_the_warehouse_unreachable_one_alert_then_one_resolved(
    db, outbox, team, monkeypatch, tmp_path
):
    task = f"t_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MF_VAR", str(tmp_path))  # this worker's state while the DB is away
    with monkeypatch.context() as down:
        down.setenv(
            "AIRFLOW_CONN_METER_WAREHOUSE",
            "postgresql://meterflow@127.0.0.1:9/meters?connect_timeout=2",
        )
        for n in range(3):  # three runs while the warehouse is unreachable
            error = ConnectionError("connection refused")
            alerts.task_failed(failure("meter_ingest", task, f"r{n}", error))
    alerts.task_succeeded({"ti": TI("meter_ingest", task, "r3")})  # the warehouse is back

    found = settle(outbox, task, 2)

    assert sorted(str(m["Subject"]) for m in found) == [
        "[meterflow] meter_ingest: 1 task failing",
        f"[meterflow] resolved: meter_ingest.{task}",
    ]
    resolved = next(m for m in found if "resolved" in str(m["Subject"]))
    assert "after 3 failed run(s)" in resolved.get_body(("html",)).get_content()


def test_without_a_team_address_alerts_are_listed_not_mailed_not_even_to_the_sponsor(
    db, outbox, monkeypatch
):
    monkeypatch.delenv("MF_ALERT_EMAIL", raising=False)
    task = f"t_{uuid.uuid4().hex[:8]}"

    alerts.task_failed(failure("meter_archive", task, "r0", ValueError("no bucket")))

    assert settle(outbox, task, 0, timeout=1) == []
    assert db.execute(
        "SELECT kind, mailed_at IS NOT NULL FROM audit.alert WHERE incident LIKE %s",
        (f"%{task}%",),
    ).fetchall() == [("task_failing", True)]


def test_past_the_hourly_limit_new_incidents_wait_for_a_later_message(
    db, outbox, team, monkeypatch
):
    monkeypatch.setenv("MF_ALERT_MAX_PER_HOUR", "2")
    marker = uuid.uuid4().hex[:8]
    for n in range(3):
        alerts.task_failed(failure("meter_quality", f"t{n}_{marker}", "r", ValueError("x")))

    assert len(settle(outbox, marker, 2)) == 2
    held = db.execute(
        "SELECT incident FROM audit.alert WHERE mailed_at IS NULL AND incident LIKE %s",
        (f"%{marker}%",),
    ).fetchall()
    assert held == [(f"task:meter_quality.t2_{marker}:ValueError",)]
    db.execute("UPDATE audit.alert_mail SET sent_at = sent_at - interval '2 hours'")
    assert alerts.flush("meter_quality", "r") == 1  # an hour later it goes out


def test_an_alert_about_a_file_with_a_newline_in_its_name_still_arrives(outbox, team):
    # A file named "a\nBcc: x@evil.example.csv" made the subject an invalid header and the
    # alert was dropped (logged only). The subject is one line, whatever the file's name.
    marker = uuid.uuid4().hex
    assert alerts.send(
        subject=f"batch 7 rejected: {marker}\nBcc: x@evil.example.csv", html_body="<p>x</p>"
    )

    [msg] = settle(outbox, marker, 1)

    assert msg["Subject"] == f"batch 7 rejected: {marker} Bcc: x@evil.example.csv"
    assert msg["Bcc"] is None


def test_an_alert_that_cannot_be_sent_is_logged_and_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        '{"conn_type": "smtp", "host": "127.0.0.1", "port": 9, '
        '"extra": {"disable_tls": true, "disable_ssl": true, "timeout": 2, "retry_limit": 0}}',
    )
    assert alerts.send(subject="x", html_body="y", to="a@b.c") is False
    assert "could not email alert" in caplog.text
