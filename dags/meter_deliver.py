"""
### meter_deliver — the period's readings, charts and data quality emailed to the sponsor, once

**When.** Each time `meter_peak_report` publishes the Asset `meter_report` (so daily); the
period is the one in the report's event extra (`period_start`, `period_end`) and its chart
PNGs (`files`) go into the email. Or by hand (Trigger DAG with config).

**What it sends.** One email to the sponsor (Airflow Variable `mf_sponsor_email`, default
`bob@btl.com`, comma-separated for several people) through the SMTP connection
`smtp_default`: subject `meterflow: smart-meter readings, <period>` (plus the number of
data-quality issues, if any); an HTML body that reads on a phone — per source readings,
meters, kWh, peak and off-peak means, completeness, charts inline, data-quality status with
failed batches and meters that stopped reporting — with a plain-text alternative; attached an
XLSX workbook (sheets A, B, C of the period's readings; CSV.gz for a source past Excel's row
limit) and a PDF report. An attachment that would take the email past `mf_attachment_limit_mb`
(default 10 MB) goes to S3 and the email carries a download link valid 7 days.

**Exactly once.** Every send is a row in `audit.delivery`, keyed by period, recipients and a
hash of the content. A rerun, a retry or a second report event for the same period sends
nothing new unless the data changed or `force` is true. SMTP failures are retried with
exponential back-off (1, 2, 4, 8 min); the last failure alerts the data owner.

**Run by hand.** Params: `period` — `auto` (the report's period, else the newest day of data),
`day` (yesterday), `week` (last full ISO week), `month` (last full month), `2025-01-15`,
`2025-01`, `2025-W03` or a range `2025-01-01..2025-01-31`; `recipients` (empty: the
sponsor setting); `sources` (A, B, C); `formats` (`xlsx`, `pdf`, `csv` for CSV.gz per source);
`force` to send again what was already sent. See docs/delivery.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from meterflow import conventions
from meterflow.conventions import check_schema


@dag(
    dag_id="meter_deliver",
    schedule=[conventions.REPORT],
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("delivery", "email"),
    doc_md=__doc__,
    params={
        "period": Param(
            "auto",
            type="string",
            minLength=1,
            description=(
                "auto (the report's period, else the newest day of data), day, week, month, "
                "YYYY-MM-DD, YYYY-MM, YYYY-Www, or a range YYYY-MM-DD..YYYY-MM-DD."
            ),
        ),
        "recipients": Param(
            None,
            type=["null", "string"],
            description="Comma-separated; empty: Variable mf_sponsor_email (bob@btl.com).",
        ),
        "sources": Param(
            ["A", "B", "C"],
            type="array",
            items={"type": "string", "enum": ["A", "B", "C"]},
            minItems=1,
            uniqueItems=True,
            description="Meter sources to include.",
        ),
        "formats": Param(
            ["xlsx", "pdf"],
            type="array",
            items={"type": "string", "enum": ["xlsx", "pdf", "csv"]},
            uniqueItems=True,
            description="Attachments: xlsx workbook, pdf report, csv (CSV.gz per source).",
        ),
        "force": Param(
            False, type="boolean", description="Send even if this content was already sent."
        ),
    },
)
def meter_deliver():
    @task
    def plan() -> dict:
        """Resolve period, recipients, sources and charts from the Params and report events."""
        from meterflow import delivery

        context = get_current_context()
        dag_run = context["dag_run"]
        events = [
            dict(event.extra or {})
            for event in context["triggering_asset_events"].get(conventions.REPORT, [])
        ]
        return delivery.make_plan(
            context["params"],
            events,
            run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
            run_after=dag_run.run_after,
            run_id=context["run_id"],
        ).to_dict()

    @task(
        retries=4,
        retry_delay=timedelta(minutes=1),
        retry_exponential_backoff=2.0,  # a multiplier in Airflow 3.3: True (== 1) is no back-off
        max_retry_delay=timedelta(minutes=30),
    )
    def deliver(planned: dict) -> dict:
        """Build the email and its attachments, then send it once (audit.delivery)."""
        from meterflow import delivery

        return delivery.deliver(planned)

    check_schema() >> deliver(plan())


meter_deliver()
