"""Alerts: one per incident, to the data team, grouped per DAG run, resolved when it clears.

An *incident* is something a person must act on, named by a stable key:

- ``file:<feed>/<name>:<sha>`` — a landed file failed and moved to failed/ (once per file);
- ``batch:<id>`` — the quality gate rejected a batch (once per batch);
- ``task:<dag>.<task>:<error class>`` — a task failed for another reason: once until that
  task succeeds again, then one short "resolved" message (how long, how many failed runs).

:func:`record` keeps each incident in ``audit.alert``; an occurrence of an incident already
open only bumps its count and last_seen. :func:`flush` sends one message for the new
incidents of a DAG run (subject: "meter_ingest: 3 files failed, 1 batch rejected"), each with
its one-line error and the link to its task log — tracebacks stay in the task log. Incidents
of a mapped task are left to the run's last step (meter_ingest's ``announce``) or, failing
that, to the next flush after a grace of 10 minutes. At most ``alert_max_per_hour`` messages
go out an hour; what is held goes in the next message.

Alerts go to ``alert_email`` (the data team; no default). With none set they are logged and
listed in ``audit.alert`` only. The sponsor receives deliverables only (meterflow.delivery).

When the warehouse itself is unreachable, incident state is kept in ``<var>/alerts/open.json``
on the worker (one alert, then one "resolved" when the task succeeds again).
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from meterflow import SQL_DIR, config

log = logging.getLogger("meterflow.alerts")

GRACE_SECONDS = 600  # an unmailed incident older than this goes with the next message
NOUNS = {  # kind -> (one, many) for subjects
    "file_failed": ("file failed", "files failed"),
    "batch_rejected": ("batch rejected", "batches rejected"),
    "task_failing": ("task failing", "tasks failing"),
    "delivery_unknown": ("delivery unknown", "deliveries unknown"),
    "notice": ("notice", "notices"),
}


def _sql(name: str) -> str:
    return (SQL_DIR / "alerts" / f"{name}.sql").read_text(encoding="utf-8")


def one_line(text: str, limit: int = 500) -> str:
    """Text as one line (file names and errors may hold newlines), at most ``limit`` chars."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def task_log_url(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The task instance's page (with its log) in the Airflow 3 UI."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    url = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    return url


def current_run() -> tuple[str | None, str | None]:
    """(dag_id, run_id) of the task this code runs in (Airflow sets them in the environment)."""
    return os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")


# --- recording ------------------------------------------------------------------------------


def record(
    incident: str,
    kind: str,
    summary: str,
    *,
    link: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    conn_id: str | None = None,
) -> bool:
    """One occurrence of ``incident``; True when it opened a new incident. Never raises: an
    alert must not hide the failure it reports."""
    import psycopg

    from meterflow import warehouse

    here = current_run()
    row = {
        "incident": incident,
        "kind": kind,
        "summary": one_line(summary),
        "link": link,
        "dag_id": dag_id or here[0],
        "run_id": run_id or here[1],
    }
    log.warning("ALERT %s: %s", incident, row["summary"])
    try:
        with warehouse.connect(conn_id) as conn:
            (new,) = conn.execute(_sql("record"), row).fetchone()
            conn.commit()
        return bool(new)
    except psycopg.OperationalError as exc:
        log.error("warehouse unreachable for alert %s (%s): kept on this worker", incident, exc)
        if _spool_open(row):
            _send([row], f"{row['dag_id'] or 'meterflow'}: {_noun(kind, 1)}")
            return True
        return False
    except Exception as exc:  # never mask the failure being reported
        log.error("could not record alert %s: %s", incident, exc)
        return False


def flush(dag_id: str | None = None, run_id: str | None = None, conn_id: str | None = None) -> int:
    """Mail the new incidents of this DAG run (and any overdue ones) as one message; return
    how many incidents it carried (0: nothing new, or held by the hourly limit)."""
    from psycopg.rows import dict_row

    from meterflow import warehouse

    here = current_run()
    params = {
        "dag_id": dag_id or here[0],
        "run_id": run_id or here[1],
        "grace_seconds": GRACE_SECONDS,
    }
    try:
        with warehouse.connect(conn_id) as conn:
            (sent_last_hour,) = conn.execute(_sql("mails_last_hour")).fetchone()
            if sent_last_hour >= config.get("alert_max_per_hour"):
                log.warning(
                    "%d alert emails in the last hour: new incidents wait in audit.alert",
                    sent_last_hour,
                )
                return 0
            rows = conn.cursor(row_factory=dict_row).execute(_sql("claim"), params).fetchall()
            if rows:
                subject = _subject(rows)
                if not _send(rows, subject):
                    conn.rollback()  # not sent: the incidents stay unmailed for the next try
                    return 0
                if config.get("alert_email"):
                    conn.execute(
                        _sql("log_mail"),
                        {
                            "recipients": config.get("alert_email"),
                            "subject": subject,
                            "incidents": len(rows),
                        },
                    )
            conn.commit()
        return len(rows)
    except Exception as exc:  # never mask the failure being reported
        log.error("could not send the alerts of %s: %s", params["run_id"], exc)
        return 0


def resolve_task(dag_id: str, task_id: str, conn_id: str | None = None) -> int:
    """The task succeeded: resolve its open incidents; one "resolved" message for those that
    were mailed. Returns how many incidents were resolved."""
    import psycopg

    from meterflow import warehouse

    prefix = f"task:{dag_id}.{task_id}:"
    resolved: list[dict[str, Any]] = _spool_resolve(prefix)
    try:
        with warehouse.connect(conn_id) as conn:
            for summary, occurrences, first, _resolved_at, told in conn.execute(
                _sql("resolve"), {"prefix": prefix}
            ).fetchall():
                if told:
                    resolved.append(
                        {"summary": summary, "occurrences": occurrences, "since": first.timestamp()}
                    )
            conn.commit()
    except psycopg.OperationalError:
        pass  # still unreachable: the spool answered
    except Exception as exc:  # never fail a task that succeeded
        log.error("could not resolve alerts of %s.%s: %s", dag_id, task_id, exc)
    for item in resolved:
        minutes = max(1, round((datetime.now(UTC).timestamp() - item["since"]) / 60))
        subject = f"[meterflow] resolved: {dag_id}.{task_id}"
        text = (
            f"{dag_id}.{task_id} succeeded again after {item['occurrences']} failed run(s) "
            f"over {minutes} min. It had failed with: {item['summary']}"
        )
        log.info("%s: %s", subject, text)
        _mail(subject, f"<p>{html.escape(text)}</p>")
    return len(resolved)


# --- the Airflow callbacks ------------------------------------------------------------------


def task_failed(context: dict[str, Any]) -> None:
    """Failure callback: a task incident, unless the failure is a file's (already recorded
    by ingest when the file moved to failed/); mailed now unless the task is mapped."""
    from meterflow.readers import UnreadableFile

    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", context.get("run_id", "?"))
    map_index = getattr(ti, "map_index", -1)
    mapped = map_index not in (-1, None)
    exc = context.get("exception")
    if isinstance(exc, UnreadableFile) or isinstance(
        getattr(exc, "__cause__", None), UnreadableFile
    ):
        return  # the file's incident, recorded where the file failed; sent with the run
    error = f"{type(exc).__name__}: {exc}" if exc else "unknown error"
    where = f"{task_id}[{map_index}]" if mapped else task_id
    record(
        f"task:{dag_id}.{task_id}:{type(exc).__name__ if exc else 'unknown'}",
        "task_failing",
        f"{dag_id}.{where} failed: {error}",
        link=task_log_url(dag_id, run_id, task_id, map_index),
        dag_id=dag_id,
        run_id=run_id,
    )
    if not mapped:
        flush(dag_id, run_id)


def task_succeeded(context: dict[str, Any]) -> None:
    """Success callback: a task that failed before is resolved."""
    ti = context.get("task_instance") or context.get("ti")
    resolve_task(getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"))


def notify(subject: str, body: str, *, incident: str | None = None, kind: str = "notice") -> None:
    """A non-failure alert (a rejected batch, …): recorded once per incident, mailed with its
    DAG run's other alerts. ``body`` beyond its first line stays in the log."""
    log.warning("ALERT %s: %s", subject, body)
    record(incident or f"notice:{one_line(subject)}", kind, subject)
    flush()


# --- mail -----------------------------------------------------------------------------------


def _noun(kind: str, n: int) -> str:
    one, many = NOUNS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


def _subject(rows: list[dict[str, Any]]) -> str:
    dags = sorted({r["dag_id"] or "meterflow" for r in rows})
    counts = Counter(r["kind"] for r in rows)
    what = ", ".join(_noun(kind, n) for kind, n in sorted(counts.items()))
    return f"{', '.join(dags)}: {what}"


def _send(rows: list[dict[str, Any]], subject: str) -> bool:
    items = "".join(
        "<li>"
        + html.escape(r["summary"])
        + (f" (seen {r['occurrences']} times)" if r.get("occurrences", 1) > 1 else "")
        + (f" — <a href='{html.escape(r['link'])}'>task log</a>" if r.get("link") else "")
        + "</li>"
        for r in rows
    )
    body = (
        f"<h2>meterflow: {html.escape(subject)}</h2><ul>{items}</ul>"
        "<p>Each is listed once in audit.alert; repeats are counted there, not mailed. Task "
        "failures are resolved by the next success of the task.</p>"
    )
    return _mail(f"[meterflow] {subject}", body)


def _mail(subject: str, html_body: str) -> bool:
    recipients = config.get("alert_email")
    if not recipients:
        log.warning("no MF_ALERT_EMAIL set: alert %r logged, not mailed", subject)
        return True  # handled: listed in audit.alert; nobody to mail
    return send(subject=subject, html_body=html_body, to=recipients)


def send(*, subject: str, html_body: str, to: str | None = None) -> bool:
    """Email an alert; True when sent. Never raises: alerting must not mask the failure."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = to or config.get("alert_email")
    subject = one_line(subject)  # one header line, whatever a file's name holds
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


# --- state on the worker while the warehouse is unreachable ---------------------------------


@contextlib.contextmanager
def _spool() -> Iterator[dict[str, Any]]:
    path = Path(config.get("var")) / "alerts" / "open.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        before = fh.read() or "{}"
        state = json.loads(before)
        yield state
        after = json.dumps(state)
        if after != before:
            fh.seek(0)
            fh.truncate()
            fh.write(after)


def _spool_open(row: dict[str, Any]) -> bool:
    with _spool() as state:
        seen = state.get(row["incident"])
        if seen:
            seen["occurrences"] += 1
            return False
        state[row["incident"]] = {
            "summary": row["summary"],
            "occurrences": 1,
            "since": datetime.now(UTC).timestamp(),
        }
        return True


def _spool_resolve(prefix: str) -> list[dict[str, Any]]:
    with _spool() as state:
        keys = [k for k in state if k.startswith(prefix)]
        return [state.pop(k) for k in keys]
