"""
### meter_archive — readings older than the retention window to S3 as Parquet, nothing lost

**What it does.** Once a month (03:00 UTC on the 1st) it takes every UTC day of
`meter.readings_a`, `readings_b` and `readings_c` older than the cutoff — midnight UTC,
`retention_days` (setting `mf_retention_days`, default 30) before the run's time (the end of
its data interval, so a retry keeps the same cutoff) — and, one mapped task per source, writes
each day as Parquet (zstd) to
`s3://<mf_s3_bucket>/archive/source=<A|B|C>/year=YYYY/month=MM/day=DD/` with a `manifest.json`
beside it (rows, kWh sum, first/last interval, sha256 and size of every object, schema
version). Each object is read back from S3 and checked (size, sha256, and row count and kWh sum
from the Parquet itself) before anything is removed. Only when every old day of the source is
verified are rows removed: one transaction per monthly partition drops the partition when its
whole month is past the cutoff, or deletes the verified days. An S3 or network failure deletes
nothing; the retry finishes the job with the same keys (no duplicates). Then processed landing
files older than the cutoff are gzipped to `raw/<feed>/<yyyy>/<mm>/<dd>/` and removed locally.

**Writes.** S3 `archive/` and `raw/`; removes archived rows from `meter.readings_*`; every
step is a row in `audit.archive_run` (`run_id` = this DAG run). The marts are not touched:
reports keep their history for archived days.

**Run by hand.** Trigger with `dry_run` = true to see (in the task logs and return values)
what would move without changing anything, and/or `retention_days` to use another window.
Archived days come back with `meter_restore`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


def _params() -> dict:
    """dry_run, retention_days, run_id and "now" for meterflow.archive. "now" is the end of
    the run's data interval (its logical date for a manual run), so that a retry or a re-run of
    the same DAG run uses the same cutoff."""
    context = get_current_context()
    params = context["params"]
    return {
        "dry_run": bool(params.get("dry_run")),
        "retention_days": params.get("retention_days"),
        "run_id": context["run_id"],
        "now": context.get("data_interval_end") or context["dag_run"].run_after,
    }


@dag(
    dag_id="meter_archive",
    schedule="0 3 1 * *",
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("archive"),
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Only report what would be archived."),
        "retention_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Archive readings older than this many days (default: mf_retention_days).",
        ),
    },
)
def meter_archive():
    @task(max_active_tis_per_dagrun=1)
    def archive_source(source: str) -> dict:
        """Export, verify and remove one source's old days (one source at a time)."""
        from meterflow import archive

        summary = archive.archive_readings(sources=[source], **_params())
        return {"source": source, "cutoff": summary["cutoff"], **summary["sources"][source]}

    @task
    def archive_landing() -> dict:
        """Gzip old processed landing files to S3 raw/ and remove them locally."""
        from meterflow import archive

        return archive.archive_landing(**_params())

    @task
    def report(sources: list[dict], landing: dict) -> dict:
        """One line per source: what moved (or, in a dry run, what would)."""
        import logging

        log = logging.getLogger("meterflow.archive")
        verb = "would move" if landing.get("dry_run") else "moved"
        sources = list(sources)  # the mapped results arrive as a lazy sequence: not returnable
        for s in sources:
            log.info(
                "%s: %s %s day(s) %s..%s, %s rows, %s kWh; partitions %s",
                s["source"],
                verb,
                s["days"],
                s["first_day"],
                s["last_day"],
                f"{s['rows']:,}",
                s["kwh_sum"],
                s.get("partitions_dropped", s["partitions_to_drop"]) or "none",
            )
        log.info("landing: %s %s processed file(s)", verb, landing["files"])
        return {"sources": sources, "landing": landing}

    schema = check_schema()
    per_source = archive_source.expand(source=list(conventions.SOURCES))
    landing = archive_landing()
    schema >> [per_source, landing]  # independent: a failing source does not hold back files
    report(per_source, landing)


meter_archive()
