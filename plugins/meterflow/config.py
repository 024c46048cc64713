"""Settings: the one home of every meterflow knob.

Each knob has a default here. An environment variable ``MF_<NAME>`` overrides the default, and
inside a running Airflow task an Airflow Variable ``mf_<name>`` overrides both (so a user can
change, say, the sponsor's address in the UI without a deploy). Nothing here touches the
metadata DB at import time: Variables are looked up only when a task asks for a value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meterflow import REPO_DIR


@dataclass(frozen=True)
class Knob:
    name: str
    default: Callable[[], Any] | Any
    cast: Callable[[str], Any]
    doc: str
    per_env: bool = False  # a folder below which MF_ENV places the environment's own (env_folder)

    @property
    def env(self) -> str:
        return f"MF_{self.name.upper()}"

    @property
    def variable(self) -> str:
        return f"mf_{self.name.lower()}"


def _var_dir() -> Path:
    return Path(os.environ.get("MF_VAR", REPO_DIR / "var"))


def _date(text: str) -> datetime:
    """A date (2000-01-01) as the UTC midnight that starts it."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


# environments (issue 24, docs/registry.md "Environments"): MF_ENV → the environment's folder
# below the landing root and its prefix in the bucket. build (the local stack, CI) keeps the
# plain layout; preprod and prod each live below a folder / prefix of their own name.
ENVIRONMENTS: dict[str, str] = {"build": "", "preprod": "preprod", "prod": "prod"}


def _env(text: str) -> str:
    value = text.strip().lower()
    if value not in ENVIRONMENTS:
        raise ValueError(f"expected one of {', '.join(ENVIRONMENTS)}, got {text!r}")
    return value


KNOBS: dict[str, Knob] = {
    k.name: k
    for k in [
        Knob("var", _var_dir, Path, "Working state of the local stack and outputs."),
        Knob(
            "landing_dir",
            lambda: _var_dir() / "landing",
            Path,
            "Landing folder: one subfolder per feed, plus processed/ and failed/ (below the "
            "environment's folder, MF_ENV).",
            per_env=True,
        ),
        Knob("warehouse_conn_id", "meter_warehouse", str, "Airflow connection of the warehouse."),
        Knob("aws_conn_id", "aws_default", str, "Airflow connection of S3."),
        Knob("smtp_conn_id", "smtp_default", str, "Airflow connection of the SMTP server."),
        Knob(
            "fs_conn_id", "fs_default", str, "Airflow filesystem connection of the landing folder."
        ),
        Knob("s3_bucket", "meterflow", str, "Bucket for raw files, archives, reports, Data Docs."),
        Knob(
            "sponsor_email", "bob@btl.com", str, "Recipients of the deliverables (comma-separated)."
        ),
        Knob(
            "alert_email",
            "",
            str,
            "The data team's address for alerts (comma-separated); empty: logged and listed in "
            "audit.alert only. The sponsor receives deliverables, never alerts.",
        ),
        Knob(
            "alert_max_per_hour",
            20,
            int,
            "Alert emails at most per hour; the rest wait in audit.alert for the next one.",
        ),
        Knob("local_tz", "Europe/London", str, "Zone of local times unless a feed says otherwise."),
        Knob(
            "max_kwh",
            25.0,
            float,
            "Highest plausible kWh in one 30-minute interval; above it a reading is rejected.",
        ),
        Knob(
            "max_files_per_run",
            500,
            int,
            "Files one meter_ingest run takes (oldest first); the rest wait for the next run.",
        ),
        Knob(
            "settle_seconds",
            10.0,
            float,
            "A landed file is taken once its size and mtime have not changed for this long.",
        ),
        Knob(
            "max_sheet_cells",
            20_000_000,
            int,
            "A workbook sheet spanning more cells (first to last) fails before it is read.",
        ),
        Knob(
            "max_inflated_mb",
            2048.0,
            float,
            "A workbook (a zip) that inflates to more than this fails before it is read.",
        ),
        Knob(
            "earliest_date",
            datetime(2000, 1, 1, tzinfo=UTC),
            _date,
            "No reading starts before this date (UTC); earlier ones are rejected as "
            "early_timestamp (a typed 0205, an Excel serial of 1, a meter's 1970 clock).",
        ),
        Knob("retention_days", 30, int, "Readings older than this are archived to S3."),
        Knob("staging_retention_days", 7, int, "Staging rows of promoted batches kept this long."),
        Knob(
            "rejected_retention_days",
            30,
            int,
            "Staging rows of batches the quality gate rejected are kept this long.",
        ),
        Knob(
            "reject_retention_days",
            90,
            int,
            "Rejected rows (audit.rejected_row) of a landed file are kept this long.",
        ),
        Knob(
            "failed_retention_days",
            30,
            int,
            "Files in landing/failed/ older than this move to S3 (failed/<feed>/…) to free disk.",
        ),
        Knob("data_docs_dir", lambda: _var_dir() / "data_docs", Path, "GX Data Docs site."),
        Knob("reports_dir", lambda: _var_dir() / "reports", Path, "Charts and report files."),
        Knob(
            "outbox_dir",
            lambda: _var_dir() / "outbox",
            Path,
            "Maildir of the local SMTP stand-in (tests and demo read mail here).",
        ),
        Knob(
            "attachment_limit_mb",
            10.0,
            float,
            "Larger attachments go to S3 and the email carries a presigned link.",
        ),
        Knob(
            "check_schema",
            True,
            _bool,
            "Apply pending warehouse migrations at the start of DAG runs.",
        ),
        # meter lifecycle (plugins/meterflow/lifecycle.py, docs/registry.md)
        Knob(
            "tranche_system",
            "DCC",
            str,
            "System that receives tranche files (S3 outbound/<system>/) and sends approvals.",
        ),
        Knob(
            "env",
            "build",
            _env,
            "Environment: build | preprod | prod. Places every feed's landing folder and every "
            "S3 prefix (preprod and prod below a folder and prefix of their name).",
        ),
        # stream receiver (plugins/meterflow/stream, docs/stream.md)
        Knob("stream_host", "127.0.0.1", str, "Address the stream receiver listens on."),
        Knob("stream_port", 8090, int, "Port of the stream receiver."),
        Knob("stream_token", "", str, "Bearer token of POST /meter; empty: <var>/stream/token."),
        Knob("stream_max_body_kb", 1024.0, float, "Largest request body the receiver takes."),
        Knob(
            "stream_max_connections",
            1000,
            int,
            "Concurrent connections the receiver serves; above it a request gets 503.",
        ),
        Knob("stream_segment_mb", 64.0, float, "A stream segment is closed at this size."),
        Knob("stream_segment_seconds", 300.0, float, "A stream segment is closed at this age."),
        Knob(
            "stream_open_dir",
            lambda: _var_dir() / "stream" / "open",
            Path,
            "Open stream segments (same filesystem as the landing folder).",
        ),
    ]
}


def _in_task() -> bool:
    try:
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS  # noqa: F401
    except ImportError:
        return False
    return True


def _variable(name: str) -> str | None:
    """The Airflow Variable ``name`` when running inside a task, else None."""
    if not _in_task():
        return None
    from airflow.sdk import Variable

    try:
        return Variable.get(name, default=None)
    except KeyError:
        return None


def get(name: str) -> Any:
    """The value of knob ``name``: Airflow Variable > environment > default."""
    knob = KNOBS[name]
    raw = _variable(knob.variable)
    if raw is None:
        raw = os.environ.get(knob.env)
    if raw is not None and raw != "":
        try:
            value = knob.cast(raw)
        except ValueError as exc:
            raise ValueError(f"setting {knob.env}/{knob.variable}={raw!r}: {exc}") from exc
    else:
        value = knob.default() if callable(knob.default) else knob.default
    return Path(value) / env_folder() if knob.per_env else value


def describe() -> list[tuple[str, str, str, str]]:
    """(env var, Airflow Variable, default, meaning) for every knob; used by the README test."""
    out = []
    for k in KNOBS.values():
        default = "<repo>/var/..." if callable(k.default) else str(k.default)
        out.append((k.env, k.variable, default, k.doc))
    return out


# --- environments (issue 24): the one derivation of where an environment's files live --------

# Every area of the bucket; a key is <s3_prefix(area)>/…, so MF_ENV moves them all.
S3_AREAS = ("raw", "failed", "archive", "reports", "data-docs", "deliveries", "outbound")


def env_folder() -> str:
    """The environment's folder below the landing root and its prefix in the bucket ('' for
    build, which keeps the plain layout)."""
    return ENVIRONMENTS[get("env")]


def s3_prefix(area: str) -> str:
    """The key prefix (no trailing /) of one area of the bucket in this environment:
    ``raw`` in build, ``prod/raw`` in prod."""
    if area not in S3_AREAS:
        raise ValueError(f"unknown S3 area {area!r} (known: {', '.join(S3_AREAS)})")
    folder = env_folder()
    return f"{folder}/{area}" if folder else area
