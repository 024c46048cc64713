"""
### meter_ingest — landed meter files into the warehouse, cleansed, exactly once

**What it does.** A deferrable FileSensor watches the landing folder (`MF_LANDING_DIR`,
connection `fs_default`) for files in a feed folder — `spreadsheets/` (xlsx/csv, long or
wide), `nem12/`, `stream/` (the packet receiver's segments), or any feed added in
`include/config/feeds.yaml`. Each new file is loaded by its own mapped task: read, cleansed
(timestamps to UTC interval starts, Wh → kWh, invalid rows rejected with a reason code,
duplicates dropped), COPY'd into `staging.reading` with its `audit.load_batch` row in one
transaction, its raw bytes put on S3 under `raw/<feed>/<yyyy>/<mm>/<dd>/`, and the file moved
to `processed/<feed>/`. A file that cannot be loaded for a reason of its own (unreadable,
values PostgreSQL refuses, …) fails only its own task, at once, and goes to `failed/<feed>/`
with a `<name>.error.txt`; a database or S3 fault leaves it in landing for the task's retries.
A file already loaded (same sha256) is skipped. A run takes at most `MF_MAX_FILES_PER_RUN`
files, oldest first; a file no feed takes is named in the `list_files` log. Files in `failed/`
older than `MF_FAILED_RETENTION_DAYS` move to S3 under `failed/<feed>/` (`shelve_failed`).

**Writes.** `staging.reading`, `audit.load_batch`, `audit.rejected_row`; emits the Asset
`meter_staging` with `{"batch_ids": [...]}`, which starts `meter_quality`.

**Run by hand.** Trigger with no params to take everything waiting in the landing folder, or
with `path` = one file (absolute, or relative to the landing folder) to load just that file.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema

LANDED = "*/*.*"  # a file directly in a feed folder; processed/ and failed/ keep files deeper


def landed(path: str | None = None) -> str:
    """The sensor's glob, absolute: the environment's landing folder (MF_ENV; rendered in the
    task, so a Variable counts), or the one file ``path`` (absolute, or relative to it)."""
    from pathlib import Path

    from meterflow import config

    return str(Path(config.get("landing_dir")) / (path or LANDED))


@dag(
    dag_id="meter_ingest",
    schedule="*/5 * * * *",
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("ingest"),
    doc_md=__doc__,
    user_defined_macros={"landed": landed},
    params={
        "path": Param(
            None,
            type=["null", "string"],
            description="Load only this file (absolute, or relative to the landing folder).",
        ),
    },
)
def meter_ingest():
    wait_for_files = FileSensor(
        task_id="wait_for_files",
        fs_conn_id="fs_default",
        filepath="{{ landed(params.path) }}",
        deferrable=True,
        poke_interval=30,
        timeout=timedelta(minutes=4, seconds=30),
        soft_fail=True,
        retries=0,
    )

    @task
    def list_files() -> list[str]:
        """The files to load this run, one mapped load task each."""
        from pathlib import Path

        from meterflow import config, ingest

        path = get_current_context()["params"].get("path")
        landing = Path(config.get("landing_dir"))
        if path:
            chosen = Path(path) if Path(path).is_absolute() else landing / path
            return [str(chosen)]
        return [str(p) for p in ingest.landed_files(landing)]

    @task(max_active_tis_per_dagrun=4, retries=3)
    def load(path: str) -> dict:
        """Load one file as one batch (one transaction); log its accounting line."""
        from dataclasses import asdict
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowFailException

        from meterflow import ingest, readers

        try:
            result = ingest.load_file(Path(path))
        except readers.UnreadableFile as exc:
            # Not transient: retrying cannot fix the file. Fail this file only.
            raise AirflowFailException(str(exc)) from exc
        return asdict(result)

    @task(trigger_rule="all_done", outlets=[conventions.STAGING])
    def announce(results: list[dict | None]) -> list[int]:
        """Emit meter_staging with the new batch ids (skipped when nothing was staged); send
        the run's alerts (every file that failed) as one message."""
        from airflow.sdk.exceptions import AirflowSkipException

        from meterflow import alerts

        alerts.flush()
        batch_ids = sorted(
            r["batch_id"] for r in results if r and r.get("batch_id") and not r["skipped_reason"]
        )
        if not batch_ids:
            raise AirflowSkipException("no new batch staged in this run")
        context = get_current_context()
        context["outlet_events"][conventions.STAGING].extra = {"batch_ids": batch_ids}
        return batch_ids

    @task
    def shelve_failed() -> int:
        """Move files that failed over MF_FAILED_RETENTION_DAYS ago from failed/ to S3."""
        from meterflow import ingest

        return ingest.shelve_failed()

    files = list_files()
    check_schema() >> [wait_for_files, shelve_failed()]
    wait_for_files >> files
    announce(load.expand(path=files))


meter_ingest()
