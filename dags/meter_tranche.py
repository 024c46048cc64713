"""
### meter_tranche — the next migration tranche: select, mark, send (manual)

**What it does.** Judges any meter still `loaded` against the exclusion lists (the site
rule: one excluded meter excludes its whole site; meters are normally judged as they
register), then selects the next tranche of
*eligible* meters — whole sites only, the site whose meters became eligible first going
first, up to `size` meters — marks them `selected` (each change a row of
`meter.status_history`), and writes the outbound file to
`s3://<mf_s3_bucket>/[<env>/]outbound/<system>/TRANCHE_<system>_<sequence>_<yyyymmddHHMMSS>.txt`
(`<env>/` for `MF_ENV` preprod or prod):
a header `HDR|system|sequence|created|tranche date`, one `meter|site|region` row per meter,
a footer `TRL|rows`. The sequence number counts up per system.

**Reads.** `meter.meter`, `meter.exclusion`. **Writes.** `meter.meter` statuses,
`meter.tranche`, `meter.tranche_meter`, the outbound file on S3.

**What comes back.** The system answers with an approval file (`HDR|system|sequence|created|
<tranche sequence>`, rows `meter|APPROVED|` or `meter|REJECTED|reason`) dropped into
`landing/approvals/`; `meter_ingest` loads it: approved meters become `notified`, rejected ones
return to `eligible` with the reason. See docs/registry.md.

**Run by hand.** Trigger with `size` (default 100,000), the tranche `date` (default: the run's
logical date) and optionally the receiving `system` (default `mf_tranche_system`).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


@dag(
    dag_id="meter_tranche",
    description="Select the next migration tranche of whole eligible sites; send its file",
    schedule=None,
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("registry"),
    doc_md=__doc__,
    params={
        "size": Param(
            100_000,
            type="integer",
            minimum=1,
            maximum=10_000_000,
            title="Tranche size",
            description="Most meters in the tranche (whole sites: it may hold fewer).",
        ),
        "date": conventions.date_param("Tranche date (YYYY-MM-DD); default the logical date."),
        "system": Param(
            None,
            type=["null", "string"],
            pattern="^[A-Za-z0-9_-]+$",
            title="Receiving system",
            description="Who receives the file (S3 outbound/<system>/); default mf_tranche_system.",
        ),
    },
)
def meter_tranche():
    @task
    def select() -> dict:
        """Judge new meters, select whole eligible sites up to `size`, mark them selected."""
        from datetime import UTC, date, datetime

        from airflow.sdk.exceptions import AirflowFailException

        from meterflow import lifecycle

        context = get_current_context()
        params = context["params"]
        try:
            day = (
                date.fromisoformat(params["date"])
                if params.get("date")
                else (context.get("logical_date") or datetime.now(UTC)).date()
            )
        except ValueError as exc:
            raise AirflowFailException(f"date: {exc}") from exc
        return lifecycle.select_tranche(
            int(params["size"]), day, system=params.get("system"), run_id=context["run_id"]
        )

    @task
    def send(tranche: dict) -> str:
        """Write the tranche's outbound file to S3 (a retry writes the same object)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from meterflow import lifecycle

        if not tranche["tranche_id"]:
            raise AirflowSkipException("no eligible site fits: no tranche, no file")
        return lifecycle.write_outbound(tranche["tranche_id"])

    chosen = select()
    check_schema() >> chosen
    send(chosen)


meter_tranche()
