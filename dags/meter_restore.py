"""
### meter_restore — archived days back into the source tables (manual)

**What it does.** Reads the Parquet archive that `meter_archive` wrote to
`s3://<mf_s3_bucket>/archive/source=<S>/year=YYYY/month=MM/day=DD/` back into
`meter.readings_a|b|c` for the chosen sources and UTC days. Every object is checked against its
day's `manifest.json` (size, sha256, row count and kWh sum) before its rows go in; each day is
one transaction; the monthly partition is recreated if it was dropped. Restoring is idempotent:
a reading already in the table (restored before, or delivered again since) is left as it is,
so running it twice gives one copy.

**Writes.** `meter.readings_*` and one `audit.archive_run` row (step `restore`) per day, with
the rows inserted and those already present. Days without an archive are skipped and named in
the log.

**Run by hand.** Trigger with `sources` (e.g. `["A"]`), `from_day` and optionally `to_day`
(inclusive, `YYYY-MM-DD`, UTC days; default: `from_day` alone). Note that restored days are
older than the retention window: the next monthly `meter_archive` archives them again (to the
same objects) unless `mf_retention_days` is raised meanwhile.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


@dag(
    dag_id="meter_restore",
    schedule=None,
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("archive"),
    doc_md=__doc__,
    params={
        "sources": conventions.sources_param(
            list(conventions.SOURCES), "Source tables to restore into."
        ),
        "from_day": conventions.date_param("First UTC day to restore (YYYY-MM-DD)."),
        "to_day": conventions.date_param("Last UTC day to restore, inclusive (default: from_day)."),
    },
)
def meter_restore():
    @task
    def requests() -> list[dict]:
        """One request per source from the Params, checked."""
        from datetime import date

        from airflow.sdk.exceptions import AirflowFailException

        params = get_current_context()["params"]
        if not params.get("from_day"):
            raise AirflowFailException("meter_restore needs the Param from_day (YYYY-MM-DD)")
        try:
            first = date.fromisoformat(params["from_day"])
            last = date.fromisoformat(params.get("to_day") or params["from_day"])
        except ValueError as exc:
            raise AirflowFailException(f"from_day/to_day: {exc}") from exc
        if last < first:
            raise AirflowFailException(f"to_day {last} is before from_day {first}")
        sources = params.get("sources") or list(conventions.SOURCES)
        return [{"source": s, "from": first.isoformat(), "to": last.isoformat()} for s in sources]

    @task(max_active_tis_per_dagrun=1)
    def restore_source(request: dict) -> dict:
        """Verify and insert one source's archived days (existing readings win)."""
        from datetime import date

        from meterflow import archive

        return archive.restore(
            source=request["source"],
            first_day=date.fromisoformat(request["from"]),
            last_day=date.fromisoformat(request["to"]),
            run_id=get_current_context()["run_id"],
        )

    chosen = requests()
    check_schema() >> chosen
    restore_source.expand(request=chosen)


meter_restore()
