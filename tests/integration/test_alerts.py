"""Alerts reach the data owner through the real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from pathlib import Path

import pytest

from meterflow import alerts

pytestmark = pytest.mark.integration


def wait_for_mail(outbox: Path, needle: str, timeout: float = 10) -> email.message.EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((outbox / "new").glob("*")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            html = msg.get_body(("html",))
            if needle in str(msg["Subject"]) or (html and needle in html.get_content()):
                return msg
        time.sleep(0.2)
    raise AssertionError(f"no email containing {needle!r} arrived in {outbox}/new")


class FakeTI:
    map_index = 2
    try_number = 3


def test_a_task_failure_emails_the_data_owner_with_dag_task_run_error_and_log_link(
    outbox, monkeypatch
):
    monkeypatch.setenv("MF_ALERT_EMAIL", "owner@example.net")
    run_id = f"manual__{uuid.uuid4().hex}"
    try:
        raise ValueError("spreadsheet.xlsx row 7: timestamp '31/02/2025' is not a date")
    except ValueError as exc:
        alerts.notify_failure(
            dag_id="meter_ingest",
            task_id="load[2]",
            run_id=run_id,
            exception=exc,
            context={"ti": FakeTI()},
        )
    msg = wait_for_mail(outbox, run_id)
    assert msg["To"] == "owner@example.net"
    assert msg["Subject"] == "[meterflow] FAILED meter_ingest.load[2]"
    body = msg.get_body(("html",)).get_content()
    assert "ValueError: spreadsheet.xlsx row 7" in body
    assert f"/dags/meter_ingest/runs/{run_id}/tasks/load/mapped/2" in body
    assert "Try</th><td>3" in body


def test_an_alert_that_cannot_be_sent_is_logged_and_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        '{"conn_type": "smtp", "host": "127.0.0.1", "port": 9, '
        '"extra": {"disable_tls": true, "disable_ssl": true, "timeout": 2, "retry_limit": 0}}',
    )
    assert alerts.send(subject="x", html_body="y", to="a@b.c") is False
    assert "could not email alert" in caplog.text


def test_an_alert_about_a_file_with_a_newline_in_its_name_still_arrives(outbox, monkeypatch):
    # A file named "a\nBcc: x@evil.example.csv" made the subject an invalid header and the
    # alert was dropped (logged only). The subject is one line, whatever the file's name.
    monkeypatch.setenv("MF_ALERT_EMAIL", "owner@example.net")
    marker = uuid.uuid4().hex
    alerts.notify(f"batch 7 rejected: {marker}\nBcc: x@evil.example.csv", "row 3: bad")

    msg = wait_for_mail(outbox, marker)

    assert msg["Subject"] == f"[meterflow] batch 7 rejected: {marker} Bcc: x@evil.example.csv"
    assert msg["Bcc"] is None
