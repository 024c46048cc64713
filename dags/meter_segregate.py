"""
### meter_segregate — validated batches into meter.readings_a, _b and _c

**When.** Whenever `meter_quality` emits the Asset `meter_validated` (batches that passed the
Great Expectations gate), or by hand.

**What it does.** `pending` lists every batch with status `validated` (oldest first — not only
the ones named by the triggering event, so a batch whose earlier promotion failed is retried).
`promote` (one mapped task per batch, one transaction per batch) runs the SQL files of
`include/sql/segregate/`: creates the monthly partitions the readings fall in, registers meters
seen for the first time in `meter.meter` (region `unassigned`), and upserts each reading into
the table of its source — a stored reading is replaced only by one of better or equal quality
(A > S/F > E; equal quality: the newer batch wins). Counts promoted + superseded + kept must
equal the rows validated; they are stored on `audit.load_batch` and the batch becomes
`promoted`. A mismatch fails that batch's task only, promotes nothing of it and leaves the
batch `validated` with the reason in `audit.load_batch.error`. `purge_staging` deletes staging
rows of batches promoted more than `MF_STAGING_RETENTION_DAYS` days ago.

**Writes.** `meter.readings_a|b|c` (+ partitions), `meter.meter`, `audit.load_batch`; emits
`readings_a`, `readings_b`, `readings_c` — each only when its table received rows — with
`{"batch_ids": [...]}`, which starts `meter_peak_report`.

**Run by hand.** Trigger with no params to promote every validated batch, or with
`batch_id` to promote just that one. Running it again changes nothing. See docs/segregation.md.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


@dag(
    dag_id="meter_segregate",
    schedule=[conventions.VALIDATED],
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("segregate"),
    doc_md=__doc__,
    params={
        "batch_id": Param(
            None,
            type=["null", "integer"],
            description="Promote only this batch (it must have status 'validated').",
        ),
    },
)
def meter_segregate():
    @task
    def pending() -> list[int]:
        """The batches to promote this run: the one asked for, or every validated batch."""
        from meterflow import segregate

        batch_id = get_current_context()["params"].get("batch_id")
        if batch_id is not None:
            return [batch_id]
        with segregate.connect() as conn:
            return segregate.validated_batches(conn)

    @task(max_active_tis_per_dagrun=1)
    def promote(batch_id: int) -> dict:
        """Promote one batch in one transaction; log its reconciliation line."""
        from airflow.sdk.exceptions import AirflowFailException

        from meterflow import segregate

        with segregate.connect() as conn:
            try:
                return segregate.promote_batch(conn, batch_id).as_dict()
            except segregate.ReconciliationError as exc:
                # Not transient: the counts will not add up on a retry either.
                raise AirflowFailException(str(exc)) from exc

    @task(trigger_rule="all_done")
    def purge_staging() -> dict:
        """Delete staging rows of batches promoted longer ago than the retention."""
        from meterflow import segregate

        with segregate.connect() as conn:
            batches, rows = segregate.purge_staging(conn)
        return {"batches": batches, "rows": rows}

    def announce(source: str):
        @task(
            task_id=f"announce_{source.lower()}",
            trigger_rule="all_done",
            outlets=[conventions.READINGS[source]],
        )
        def announce_source(results: list[dict | None]) -> list[int]:
            """Emit readings_<source> with the batches whose rows went into its table."""
            from airflow.sdk.exceptions import AirflowSkipException

            from meterflow import segregate

            batch_ids = segregate.received_by_source(results)[source]
            if not batch_ids:
                raise AirflowSkipException(f"no rows went into source {source}'s table")
            outlet = get_current_context()["outlet_events"][conventions.READINGS[source]]
            outlet.extra = {"batch_ids": batch_ids}
            return batch_ids

        return announce_source

    batches = pending()
    check_schema() >> batches
    promoted = promote.expand(batch_id=batches)
    for source in conventions.SOURCES:
        announce(source)(promoted)
    promoted >> purge_staging()


meter_segregate()
