"""
### meter_quality — the quality gate: every staged batch checked by Great Expectations

**What it does.** Runs when `meter_ingest` emits the Asset `meter_staging`. Every batch of
`audit.load_batch` still `staged` (not only the ones of the latest event, so nothing waits
forever after a failed run) is validated by its own mapped task: a GX 1.x Checkpoint runs the
suite `include/expectations/meter_reading.json` inside PostgreSQL over the batch's
`staging.reading` rows (a GX query asset; no row is pulled into Python). A failed **critical**
expectation (meter id pattern, kWh missing or outside `[0, MF_MAX_KWH]`, interval off the
30-minute grid or in the future, duplicate meter/interval, empty batch) makes the batch
`rejected`: it is never promoted, and the data owner (`MF_ALERT_EMAIL`) gets an email naming
the batch, its file and the failed expectations. A failed **warning** (incomplete local day,
too many estimated readings) is reported and the batch becomes `validated`.

**Writes.** `audit.quality_result` (one row per validation: verdict, failed expectations with
unexpected counts and sample values, Data Docs path), `audit.load_batch.status`; the GX Data
Docs site in `MF_DATA_DOCS_DIR` (default `var/data_docs/`, one page per validation), copied to
`s3://<MF_S3_BUCKET>/data-docs/`. Emits the Asset `meter_validated` with
`{"batch_ids": [...]}` = the batches that passed, which starts `meter_segregate`.

**Run by hand.** Trigger with no params to validate every staged batch, or with `batch_id` to
re-validate one batch (staged, validated or rejected — e.g. after changing a setting such as
`MF_MAX_KWH`); a promoted batch is refused. Each task log names the Data Docs page.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


@dag(
    dag_id="meter_quality",
    schedule=[conventions.STAGING],
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("quality"),
    doc_md=__doc__,
    params={
        "batch_id": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Re-validate only this batch (audit.load_batch.batch_id).",
        ),
    },
)
def meter_quality():
    @task
    def pending_batches() -> list[int]:
        """The batches to check: the `batch_id` param, else every staged batch."""
        from meterflow import quality

        batch_id = get_current_context()["params"].get("batch_id")
        batches = [int(batch_id)] if batch_id else quality.pending_batches()
        quality.log.info("%d batch(es) to validate: %s", len(batches), batches)
        return batches

    @task(max_active_tis_per_dagrun=4)
    def validate(batch_id: int) -> dict:
        """Run the suite on one batch; record the verdict, publish Data Docs, alert if rejected."""
        from airflow.sdk.exceptions import AirflowFailException

        from meterflow import quality

        try:
            verdict = quality.validate_batch(batch_id)
        except quality.NotCheckable as exc:  # unknown or promoted batch: no retry helps
            raise AirflowFailException(str(exc)) from exc
        return {"batch_id": verdict.batch_id, "verdict": verdict.verdict}

    @task(trigger_rule="all_done", outlets=[conventions.VALIDATED])
    def announce(results: list[dict | None]) -> list[int]:
        """Emit meter_validated with the batches that passed (skipped when none did)."""
        from airflow.sdk.exceptions import AirflowSkipException

        passed = sorted(r["batch_id"] for r in results if r and r["verdict"] == "validated")
        if not passed:
            raise AirflowSkipException("no batch passed the quality gate in this run")
        get_current_context()["outlet_events"][conventions.VALIDATED].extra = {"batch_ids": passed}
        return passed

    batches = pending_batches()
    check_schema() >> batches
    announce(validate.expand(batch_id=batches))


meter_quality()
