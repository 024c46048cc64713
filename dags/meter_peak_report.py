"""
### meter_peak_report — peak-period means, day/week/month/region marts and charts

**When.** Every day at 06:00 Europe/London, and whenever `meter_segregate` updates one of
the Assets `readings_a`, `readings_b`, `readings_c` (an `AssetOrTimeSchedule`).

**What it does.** Decides which local days to recompute (`plan`):
- a run started by new readings recomputes only the local days those batches touched
  (the batch ids of the Asset events) and reports from the first to the last of them;
- the daily 06:00 run (or a manual run without dates) recomputes and reports the 7 local
  days ending yesterday;
- a manual run with `date_from` / `date_to` recomputes and reports exactly that range.

Then `refresh_marts` rewrites, in one transaction and from the day sums that promotion keeps
(`mart.meter_day`, `mart.slot_day`; days without sums under the current tariffs are summed
from their readings first), `mart.peak_daily` (peak and off-peak mean
kWh per half hour for every tariff of `include/config/tariffs.yaml`, evaluated in local time,
so a clock-change day still has its 16:00–19:00 window at local 16:00),
`mart.consumption_daily`, `_weekly`, `_monthly`, `mart.consumption_by_region` and
`mart.load_profile_daily` for those days (rows change only when a value does).
`charts` draws four PNGs — daily peak vs off-peak means per source, the average daily load
profile with the peak window shaded, a meters × days heatmap, consumption by region — into
`<mf_reports_dir>/<last day>/` and uploads them to `s3://<mf_s3_bucket>/reports/<last day>/`.
`announce` emits the Asset `meter_report` with
`{"period_start", "period_end", "files"}` (ISO dates, local PNG paths) for `meter_deliver`.

**Run by hand.** Trigger with `date_from` / `date_to` (local dates, YYYY-MM-DD; one alone
means that single day), `sources` (any of A, B, C; empty = all) and `tariff` (a name from
tariffs.yaml; empty = its default). `rescan` sums the days from their readings again first:
use it after readings were changed by hand (SQL) rather than by promotion or restore.
See docs/reports.md.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from meterflow import conventions
from meterflow.conventions import check_schema

REPORT_TZ = "Europe/London"
NEW_READINGS = conventions.READINGS["A"] | conventions.READINGS["B"] | conventions.READINGS["C"]


@dag(
    dag_id="meter_peak_report",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone=REPORT_TZ), assets=NEW_READINGS
    ),
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("report"),
    doc_md=__doc__,
    params={
        "date_from": conventions.date_param(
            "First local day to recompute and report (YYYY-MM-DD)."
        ),
        "date_to": conventions.date_param("Last local day to recompute and report (YYYY-MM-DD)."),
        "sources": conventions.sources_param([], "Meter sources to report (empty: A, B and C)."),
        "tariff": Param(
            None,
            type=["null", "string"],
            description="Tariff of include/config/tariffs.yaml (empty: its default, 'peak').",
        ),
        "rescan": Param(
            False,
            type="boolean",
            description="Sum the days from their readings again before the marts are rebuilt "
            "(after readings were changed other than by promotion or restore).",
        ),
    },
)
def meter_peak_report():
    @task
    def plan() -> dict:
        """Which local days to recompute and which period to report (see the DAG doc)."""
        from airflow.sdk import get_current_context

        from meterflow import aggregation

        context = get_current_context()
        events = {
            asset.name: [e.extra for e in found]
            for asset, found in context["triggering_asset_events"].items()
        }
        return aggregation.plan_for_run(
            context["params"], events, context["dag_run"].run_after
        ).to_dict()

    @task
    def refresh_marts(plan: dict) -> dict:
        """Recompute every mart for the plan's days; skip the run when there are none."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from meterflow import aggregation

        chosen = aggregation.Plan.from_dict(plan)
        if not chosen.day_count:
            raise AirflowSkipException(f"nothing to recompute ({chosen.reason})")
        return asdict(aggregation.refresh_for_plan(chosen))

    @task
    def charts(plan: dict) -> dict:
        """Draw the period's charts, write them under reports_dir and upload them to S3."""
        from meterflow import aggregation

        return aggregation.publish_peak_charts(aggregation.Plan.from_dict(plan))

    @task(outlets=[conventions.REPORT])
    def announce(plan: dict, published: dict) -> dict:
        """Emit meter_report with the period and the chart files."""
        from airflow.sdk import get_current_context

        extra = {
            "period_start": plan["period_start"],
            "period_end": plan["period_end"],
            "files": published["files"],
        }
        get_current_context()["outlet_events"][conventions.REPORT].extra = extra
        return extra

    planned = plan()
    refreshed = refresh_marts(planned)
    published = charts(planned)
    check_schema() >> planned
    refreshed >> published
    announce(planned, published)


meter_peak_report()
