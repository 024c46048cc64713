"""Alerts: what happens when a task fails or a batch is rejected.

Every alert is logged (task log and the ``meterflow.alerts`` logger) and emailed to the data
owner (setting ``alert_email``, Airflow Variable ``mf_alert_email``) through the SMTP
connection. Sending the email is best effort: an alert that cannot be sent is logged and never
hides the failure that caused it.
"""

from __future__ import annotations

import html
import logging
import traceback
from typing import Any
from urllib.parse import quote

from meterflow import config

log = logging.getLogger("meterflow.alerts")


def task_log_url(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The task instance's page (with its log) in the Airflow 3 UI."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    url = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    return url


def notify_failure(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
) -> None:
    """Alert the data owner that a task failed: DAG, task, run, exception, link to the log."""
    ti = (context or {}).get("task_instance") or (context or {}).get("ti")
    map_index = getattr(ti, "map_index", None)
    base_task = task_id.split("[", 1)[0]
    url = task_log_url(dag_id, run_id, base_task, map_index)
    error = f"{type(exception).__name__}: {exception}" if exception else "unknown error"
    log.error(
        "ALERT task failure dag=%s task=%s run=%s: %s (%s)", dag_id, task_id, run_id, error, url
    )
    tb = ""
    if exception is not None and exception.__traceback__ is not None:
        tb = "".join(traceback.format_exception(exception))[-4000:]
    rows = [
        ("DAG", dag_id),
        ("Task", task_id),
        ("Run", run_id),
        ("Try", str(getattr(ti, "try_number", "?"))),
        ("Error", error),
    ]
    body = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    send(
        subject=f"[meterflow] FAILED {dag_id}.{task_id}",
        html_body=(
            f"<h2>meterflow task failed</h2><table>{body}</table>"
            f"<p><a href='{html.escape(url)}'>Task log in the Airflow UI</a><br>"
            f"{html.escape(url)}</p>" + (f"<pre>{html.escape(tb)}</pre>" if tb else "")
        ),
    )


def notify(subject: str, body: str) -> None:
    """A non-failure alert (e.g. a rejected quality batch): logged and emailed."""
    log.warning("ALERT %s: %s", subject, body)
    send(subject=f"[meterflow] {subject}", html_body=f"<pre>{html.escape(body)}</pre>")


def send(*, subject: str, html_body: str, to: str | None = None) -> bool:
    """Email an alert; True when sent. Never raises: alerting must not mask the failure."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = to or config.get("alert_email")
    subject = " ".join(subject.split())  # one header line, whatever a file's name holds
    try:
        with SmtpHook(smtp_conn_id=config.get("smtp_conn_id")) as hook:
            hook.send_email_smtp(
                to=recipients,
                subject=subject,
                html_content=html_body,
                from_email=hook.from_email or "meterflow@localhost",
            )
    except Exception as exc:  # alerting must never mask the failure (see docstring)
        log.error("could not email alert %r to %s: %s", subject, recipients, exc)
        return False
    return True
