"""
### meter_consumption_report — one meter's consumption over a period, as a chart and a CSV

**When.** Only when triggered by hand (or through the REST API).

**What it does.** Reads the readings of `meter_id` (from `meter.readings_a|b|c`, chosen by
the meter's source in `meter.meter`) over `period`, in local calendar terms (setting
`mf_local_tz`, default Europe/London):

| period | the intervals reported |
|---|---|
| `previous_hour` | the last complete clock hour (2 half hours) |
| `current_day` | today from local midnight (46 or 50 half hours on a clock-change day) |
| `current_week` | this ISO week, from Monday 00:00 local |
| `current_month` | this calendar month |
| `previous_month` | the whole calendar month before this one |

It writes `consumption_<meter>_<period>_<label>.csv` (meter_id, interval_start_utc,
interval_start_local, kwh, quality) and a PNG chart (per half hour for an hour or a day,
per local day for a week or a month) into `<mf_reports_dir>/<today>/`, next to the peak
reports, uploads both to `s3://<mf_s3_bucket>/reports/<today>/`, and logs their paths.
An unknown meter fails the run with a message naming it.

**Run by hand.** Trigger with `meter_id` (e.g. `SMR89134A`) and `period`; `at` (an ISO
date-time with zone) reports as if it were that moment instead of now.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from meterflow import conventions

PERIODS = ["previous_hour", "current_day", "current_week", "current_month", "previous_month"]


@dag(
    dag_id="meter_consumption_report",
    schedule=None,
    start_date=conventions.START_DATE,
    catchup=False,
    default_args=conventions.default_args(),
    tags=conventions.tags("report"),
    doc_md=__doc__,
    params={
        "meter_id": Param(
            "SMR89134A",
            type="string",
            minLength=1,
            description="The meter to report, e.g. SMR89134A.",
        ),
        "period": Param(
            "current_day",
            type="string",
            enum=PERIODS,
            description="Which period of the meter's readings to report.",
        ),
        "at": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Report as if it were this moment (ISO 8601 with zone; empty: now).",
        ),
    },
)
def meter_consumption_report():
    @task
    def report() -> dict:
        """Write the meter's CSV and chart, upload them to S3, log their paths."""
        from datetime import datetime

        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from meterflow import aggregation

        params = get_current_context()["params"]
        now = (
            datetime.fromisoformat(params["at"])
            if params.get("at")
            else datetime.now().astimezone()
        )
        try:
            return aggregation.consumption_report(params["meter_id"], params["period"], now)
        except aggregation.AggregationError as exc:
            # An unknown meter or a bad Param: retrying cannot fix it.
            raise AirflowFailException(str(exc)) from exc

    report()


meter_consumption_report()
