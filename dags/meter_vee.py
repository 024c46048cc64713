"""
### meter_vee — validation, estimation and editing of the promoted readings

**When.** Every day at 05:30 Europe/London (the previous local day is closed by then:
`close_delay_hours` in `include/config/vee.yaml`), and whenever `meter_segregate` updates one
of the Assets `readings_a`, `readings_b`, `readings_c` (an `AssetOrTimeSchedule`).

**What it does.** For the local days of the run — the days the new batches touched (closed
days within the estimation horizon), or on the daily run the `lookback_days` ending yesterday —
and every meter that reported in them, per energy channel (import E…, export B…):
- closes the estimates an actual has replaced since (kept in `audit.vee_estimate`);
- flags suspect readings against the meter's own history in `audit.vee_flag` (SPIKE, FLAT,
  ZERO, HIGH, LOW, GAP; codes and thresholds in vee.yaml), never altering them;
- estimates every missing half hour: LINEAR for gaps up to 1 hour, LIKE_DAY (same weekday of
  the previous weeks, scaled to the day's own level) up to the horizon; estimates are readings
  with quality E and batch 0, their method and inputs in `audit.vee_estimate`;
- keeps `mart.vee_daily` (share of estimated readings) and, when readings changed, the day
  sums and every mart of those days.

A re-run over the same readings changes nothing. Non-energy channels are left alone.

**Run by hand.** Trigger with `date_from` / `date_to` (local dates, YYYY-MM-DD; one alone
means that single day) and optionally `meter` (one meter id). See docs/vee.md.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from meterflow import conventions
from meterflow.conventions import check_schema

VEE_TZ = "Europe/London"
NEW_READINGS = conventions.READINGS["A"] | conventions.READINGS["B"] | conventions.READINGS["C"]


@dag(
    dag_id="meter_vee",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 5 * * *", timezone=VEE_TZ), assets=NEW_READINGS
    ),
    start_date=conventions.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=conventions.default_args(),
    tags=conventions.tags("vee"),
    doc_md=__doc__,
    params={
        "date_from": conventions.date_param("First local day to judge (YYYY-MM-DD)."),
        "date_to": conventions.date_param("Last local day to judge (YYYY-MM-DD)."),
        "meter": Param(
            None,
            type=["null", "string"],
            description="One meter id to judge (empty: every meter that reported).",
        ),
    },
)
def meter_vee():
    @task
    def validate_and_estimate() -> dict:
        """Flag, estimate and write the run's days (see the DAG doc); marts of changed days."""
        from airflow.sdk import get_current_context

        from meterflow import vee

        context = get_current_context()
        events = {
            asset.name: [e.extra for e in found]
            for asset, found in context["triggering_asset_events"].items()
        }
        run = context["dag_run"]
        return vee.run_for_dag(context["params"], events, run.run_after, run.run_id)

    check_schema() >> validate_and_estimate()


meter_vee()
