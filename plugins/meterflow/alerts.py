"""Alerts: what happens when a task fails or a batch is rejected.

Today an alert is a log line (on the task log and the ``meterflow.alerts`` logger). The
delivery issue adds the email to the data owner here, so every caller gets it unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("meterflow.alerts")


def notify_failure(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
) -> None:
    log.error("ALERT task failure dag=%s task=%s run=%s: %s", dag_id, task_id, run_id, exception)


def notify(subject: str, body: str) -> None:
    """A non-failure alert (e.g. a rejected quality batch)."""
    log.warning("ALERT %s: %s", subject, body)
