"""Shared DAG conventions: start date, default_args, tags, Assets, the failure callback.

Every DAG file imports these so that retries, ownership, alerting and the Asset names of
ARCHITECTURE.md §1 are the same everywhere. Importing this module is cheap (no pandas, no DB).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, task

log = logging.getLogger("meterflow.alerts")

START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
OWNER = "metering"
BASE_TAGS = ["meterflow"]

# Assets: how the DAGs talk to each other (never by importing each other).
STAGING = Asset("meter_staging")  # extra: {"batch_ids": [...]}
VALIDATED = Asset("meter_validated")  # extra: {"batch_ids": [...]}
READINGS = {s: Asset(f"readings_{s.lower()}") for s in ("A", "B", "C")}
REPORT = Asset("meter_report")

SOURCES = ("A", "B", "C")


def date_param(description: str) -> Param:
    """An optional YYYY-MM-DD Param of a manual run (a date picker in the trigger form)."""
    return Param(None, type=["null", "string"], format="date", description=description)


def sources_param(default: list[str], description: str) -> Param:
    """A Param choosing among the meter sources A, B and C."""
    return Param(
        default,
        type="array",
        items={"type": "string", "enum": list(SOURCES)},
        description=description,
    )


def on_failure(context: dict[str, Any]) -> None:
    """Failure callback of every task: one clear line naming DAG, task, run and exception."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", context.get("run_id", "?"))
    map_index = getattr(ti, "map_index", -1)
    try_number = getattr(ti, "try_number", "?")
    exc = context.get("exception")
    where = f"{task_id}[{map_index}]" if map_index not in (-1, None) else task_id
    log.error(
        "meterflow task failed: dag=%s task=%s run=%s try=%s error=%s: %s",
        dag_id,
        where,
        run_id,
        try_number,
        type(exc).__name__ if exc else "?",
        exc,
    )
    from meterflow import alerts

    alerts.task_failed(context)


def on_success(context: dict[str, Any]) -> None:
    """Success callback of every task: a task that had failed is resolved (one message)."""
    from meterflow import alerts

    alerts.task_succeeded(context)


def default_args(**overrides: Any) -> dict[str, Any]:
    """default_args of every meterflow DAG: owner, retries with back-off, failure callback."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3.3: True (=1) never grows
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": on_failure,
        "on_success_callback": on_success,
    }
    args.update(overrides)
    return args


def tags(*more: str) -> list[str]:
    return [*BASE_TAGS, *more]


@task
def check_schema() -> int:
    """Apply pending warehouse migrations (a no-op when up to date); the first task of every
    DAG that touches the warehouse, so a deploy with a new migration needs no manual step."""
    from meterflow import config, warehouse

    return warehouse.ensure_schema() if config.get("check_schema") else 0
