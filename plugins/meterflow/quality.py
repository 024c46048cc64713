"""The quality gate: every staged batch checked by Great Expectations 1.x inside PostgreSQL.

One batch (one landed file) is validated by a GX Checkpoint against the suite
``include/expectations/meter_reading.json``. First one pass over the batch's staging rows in
PostgreSQL (include/sql/quality/profile.sql: a parallel scan and one hash aggregate) groups
them by meter and local day: the readings, readings without kWh, smallest and largest kWh,
estimated, future, misaligned and duplicate readings, distinct intervals and the intervals
that day should have. Its meter-days are summed per meter into the batch's *profile*
(staging.batch_profile, V014: ~100 rows for 5M readings), and the meter-days whose intervals
are not their local day's go to staging.batch_day_gap. The suite's expectations judge the
profile, a GX *table asset* on the view ``staging.profile_under_check``, which shows the batch
named by the session setting ``meterflow.batch_id`` that the data source's connection string
carries. No row is pulled into Python. For a check that failed, its ``meta.rows_query`` then
counts and samples the offending readings in staging.reading (or the day gaps), so the record
and the alert name real rows.

Each expectation carries GX's own ``severity``: a failed ``critical`` one rejects the batch
(audit.load_batch.status = 'rejected', never promoted, the data owner is alerted); a failed
``warning`` is reported and the batch passes (status 'validated'). Every run writes one row
to audit.quality_result and one page of the GX Data Docs site (setting ``data_docs_dir``),
which is also published to ``s3://<s3_bucket>/data-docs/``.

The GX file context lives under ``<var>/gx`` (never in the repository). Its configuration
holds no credential: the data source's connection string is ``${MF_GX_WAREHOUSE_URL}``, set
in the task's process from the Airflow connection. A file context is not safe for concurrent
writers, so the GX part of a validation holds an exclusive file lock on ``<var>/gx/.lock``.
One asset, validation definition and checkpoint serve every batch, so the context does not
grow with the number of batches. Data Docs pages are rendered by
``meterflow.gx_docs`` views, which keep GX's compiled page templates under ``<var>/gx``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

from meterflow import EXPECTATIONS_DIR, SQL_DIR, config, warehouse
from meterflow.models import METER_ID_PATTERN, BatchStatus, ChannelKind, channel_kind

if TYPE_CHECKING:
    import psycopg
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.data_context import FileDataContext

    from meterflow.feeds import Feed

log = logging.getLogger(__name__)

SUITE = "meter_reading"
DATASOURCE = "warehouse"
SITE = "local_site"
DOCS_PREFIX = "data-docs"
URL_ENV = "MF_GX_WAREHOUSE_URL"  # read by GX's ${...} substitution, never written to disk
SAMPLE_SIZE = 10  # unexpected values kept per failed expectation
PROFILE_VIEW = "profile_under_check"  # staging.profile_under_check (V014): batch of the session
CHECKPOINT = "profile"  # the GX asset, validation definition and checkpoint of every batch
# The checkpoint's result format. The asset is the small profile, so GX's partial unexpected
# lists (the offending meters, shown in Data Docs) cost milliseconds.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
CHECKABLE = {BatchStatus.STAGED, BatchStatus.VALIDATED, BatchStatus.REJECTED}
QUALITY_SQL = SQL_DIR / "quality"
_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


class QualityError(RuntimeError):
    """A batch cannot be judged (unknown, not staged, or an expectation could not run)."""


class NotCheckable(QualityError):
    """The batch does not exist or is not staged/validated/rejected: retrying cannot help."""


@dataclass
class Failure:
    """One failed expectation of a batch, as stored in audit.quality_result.failures."""

    check: str
    expectation: str
    severity: str
    column: str | None
    unexpected_count: int | None
    sample: list[Any] = field(default_factory=list)

    def line(self) -> str:
        what = f"{self.check} ({self.expectation}{f' on {self.column}' if self.column else ''})"
        count = f": {self.unexpected_count:,} unexpected" if self.unexpected_count else ""
        sample = f", e.g. {self.sample[:3]}" if self.sample else ""
        return f"[{self.severity}] {what}{count}{sample}"


@dataclass
class Verdict:
    """What validating one batch decided."""

    batch_id: int
    file_name: str
    suite: str
    verdict: str  # validated | rejected
    success: bool  # GX's flag: every expectation passed
    evaluated: int
    failures: list[Failure]
    docs_path: str | None  # relative to the Data Docs site (local dir and s3 data-docs/)
    run_name: str
    started_at: datetime
    seconds: float = 0.0
    profile_seconds: float = 0.0  # of ``seconds``: the one pass over the rows (profile.sql)

    @property
    def critical(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "critical"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity != "critical"]

    def summary(self) -> str:
        return (
            f"batch {self.batch_id} ({self.file_name}): {self.verdict}, "
            f"{self.evaluated} expectations, {len(self.critical)} critical and "
            f"{len(self.warnings)} warning failures"
            + (f"; Data Docs {self.docs_path}" if self.docs_path else "")
        )

    def as_xcom(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        return out


def sql(name: str) -> str:
    """The text of include/sql/quality/<name>.sql."""
    return (QUALITY_SQL / f"{name}.sql").read_text(encoding="utf-8")


def _statement(name: str) -> str:
    """include/sql/quality/<name>.sql without its comment lines, on one line (GX's query
    asset wants text that starts with SELECT)."""
    lines = (line.strip() for line in sql(name).splitlines())
    return " ".join(line for line in lines if line and not line.startswith("--"))


# --- the suite ------------------------------------------------------------------------------


def local_tz() -> str:
    """The zone of a 'local day' for completeness; validated, so it is safe inside SQL text."""
    name = str(config.get("local_tz"))
    if not _TZ_NAME.match(name):
        raise QualityError(f"setting local_tz={name!r} is not a time zone name")
    ZoneInfo(name)  # raises for an unknown zone
    return name


def suite_definition(name: str = SUITE, directory: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    """The suite as stored in include/expectations/<name>.json, with ``{parameter}`` in an
    expectation's description (the sentence its Data Docs row shows) filled in from
    ``expectation_parameters()``, so the page states the bound it checked."""
    path = directory / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("name") != name:
        raise QualityError(f"{path}: suite name {data.get('name')!r}, expected {name!r}")
    params = expectation_parameters()
    for exp in data["expectations"]:
        if exp.get("severity") not in {"critical", "warning", "info"}:
            raise QualityError(f"{path}: {exp['type']} needs a severity (critical or warning)")
        if isinstance(exp.get("description"), str):
            text = exp["description"]
            for key, value in params.items():
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                text = text.replace("{" + key + "}", shown)
            exp["description"] = text
    return data


def load_suite(name: str = SUITE, directory: Path = EXPECTATIONS_DIR) -> ExpectationSuite:
    from great_expectations.core.expectation_suite import ExpectationSuite

    return ExpectationSuite(**suite_definition(name, directory))


def expectation_parameters(feed: Feed | None = None) -> dict[str, Any]:
    """Values of the suite's ``{"$PARAMETER": ...}`` placeholders: setting ``max_kwh``, and the
    meter-id pattern of the feed that staged the batch (``feed``; without one, the domain's
    ``models.METER_ID_PATTERN``), so a feed of real NMIs is judged by its own pattern."""
    return {
        "max_kwh": float(config.get("max_kwh")),
        "meter_id_pattern": feed.meter_id_pattern if feed is not None else METER_ID_PATTERN,
    }


def batch_feed(conn: psycopg.Connection, batch_id: int) -> Feed:
    """The feed (include/config/feeds.yaml) that staged ``batch_id``; a feed removed from
    feeds.yaml since is a feed of defaults under its name (logged)."""
    from meterflow import feeds

    row = conn.execute(sql("batch_feed"), {"batch_id": batch_id}).fetchone()
    name = str(row[0]) if row else "?"
    feed = feeds.load_feeds().get(name)
    if feed is None:
        log.warning("batch %s: feed %r is not in feeds.yaml: its defaults apply", batch_id, name)
        feed = feeds.Feed(name=name, folder=name)
    return feed


# --- the GX context -------------------------------------------------------------------------


def gx_root() -> Path:
    return Path(config.get("var")) / "gx"


def docs_dir() -> Path:
    return Path(config.get("data_docs_dir"))


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def session_options(batch_id: int | None) -> str:
    """libpq ``options`` of GX's connections: the batch that staging.profile_under_check shows
    (V014)."""
    settings: dict[str, str] = {}
    if batch_id is not None:
        settings["meterflow.batch_id"] = str(int(batch_id))
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def _sqlalchemy_url(conn_id: str | None = None, batch_id: int | None = None) -> str:
    """The warehouse as a SQLAlchemy URL (psycopg 3 driver), from the Airflow connection, with
    ``session_options(batch_id)``."""
    from airflow.sdk import BaseHook
    from sqlalchemy.engine import URL

    conn = BaseHook.get_connection(conn_id or config.get("warehouse_conn_id"))
    extra = conn.extra_dejson or {}
    query = {k: str(v) for k, v in extra.items() if k in {"sslmode", "sslrootcert"}}
    query["options"] = session_options(batch_id)
    return URL.create(
        "postgresql+psycopg",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or "localhost",
        port=conn.port or 5432,
        database=conn.schema or "meters",
        query=query,
    ).render_as_string(hide_password=False)


def data_docs_site() -> dict[str, Any]:
    """The Data Docs site in ``data_docs_dir``: GX's own builders and views, from
    meterflow.gx_docs where they keep work between validations (compiled page templates; the
    index's fields of each stored result)."""
    views = {"module_name": "meterflow.gx_docs"}
    return {
        "class_name": "SiteBuilder",
        "site_index_builder": {
            **views,
            "class_name": "SiteIndexBuilder",
            "view": {**views, "class_name": "IndexPageView"},
        },
        "site_section_builders": {
            section: {"view": {**views, "class_name": "PageView"}}
            for section in ("expectations", "validations")
        },
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir()),
        },
    }


def context(conn_id: str | None = None, batch_id: int | None = None) -> FileDataContext:
    """The GX file context under <var>/gx with the warehouse data source (its sessions see
    ``batch_id`` in staging.profile_under_check), the suite and the Data Docs site in
    ``data_docs_dir``. Call it holding the lock (see ``_locked``)."""
    import great_expectations as gx

    os.environ[URL_ENV] = _sqlalchemy_url(conn_id, batch_id)
    ctx = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    settings = ctx.variables
    if settings.config_variables_file_path or settings.progress_bars is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # No config variables file: GX re-reads and re-parses it (only its project template's
        # comments) on each of ~80 configuration lookups of a validation, 0.1 s; meterflow's
        # one substituted value, the connection string, comes from the environment.
        if settings.config_variables_file_path:
            (Path(ctx.root_directory) / settings.config_variables_file_path).unlink(missing_ok=True)
        settings.config_variables_file_path = None
        # No progress bars: in a task log they are only noise
        settings.progress_bars = ProgressBarsConfig(globally=False)
        settings.save()
    site = data_docs_site()
    sites = ctx.get_config().data_docs_sites or {}
    if sites.get(SITE) != site:
        if SITE in sites:
            ctx.delete_data_docs_site(SITE)
        ctx.add_data_docs_site(SITE, site)
    try:
        ctx.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        ctx.data_sources.add_postgres(DATASOURCE, connection_string="${" + URL_ENV + "}")
    return ctx


def _setup_stamp() -> str:
    """What the kept suite and checkpoint are made from: when it changes, they are made again."""
    import great_expectations as gx

    made_from = [gx.__version__, suite_definition(), RESULT_FORMAT, SITE, CHECKPOINT, PROFILE_VIEW]
    return hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()


def _checkpoint(ctx: FileDataContext) -> Any:
    """The checkpoint that validates the profile of the session's batch, with the suite of
    include/expectations. Made by ``_make_checkpoint`` when the GX home has none or it was made
    from another suite, checkpoint setup or GX version (``<var>/gx/setup.sha256``); otherwise
    only loaded: saving an unchanged suite, definition and checkpoint took ~0.05 s."""
    stamp_file = gx_root() / "setup.sha256"
    stamp = _setup_stamp()
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        with contextlib.suppress(Exception):  # gone or unreadable: made again below
            return ctx.checkpoints.get(CHECKPOINT)
    checkpoint = _make_checkpoint(ctx)
    stamp_file.write_text(stamp)
    return checkpoint


def _make_checkpoint(ctx: FileDataContext) -> Any:
    """A table asset on the view staging.profile_under_check, its validation definition and the
    checkpoint, all named ``CHECKPOINT``, and the suite: made once per GX home and kept. Every
    batch is validated by the same three: the view shows the batch that the data source's
    connection carries (``context``), and the run name carries the batch into Data Docs and the
    record. Making and deleting them for each batch rewrote great_expectations.yml three times
    per validation (~0.06 s)."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    ctx.suites.add_or_update(load_suite())
    # per-batch ones of earlier meterflow versions (one left by a killed run); one that GX
    # cannot read must not stop the validation
    for store in (ctx.checkpoints, ctx.validation_definitions):
        with contextlib.suppress(Exception):
            for old in store.all():
                if old.name != CHECKPOINT:
                    store.delete(old.name)
    source = ctx.data_sources.get(DATASOURCE)
    for name in [a.name for a in source.assets if a.name != CHECKPOINT]:
        source.delete_asset(name)
    try:
        asset = source.get_asset(CHECKPOINT)
    except LookupError:
        # GX reflects the view's columns from the catalogue
        asset = source.add_table_asset(
            name=CHECKPOINT, table_name=PROFILE_VIEW, schema_name="staging"
        )
    try:
        batch = asset.get_batch_definition(CHECKPOINT)
    except KeyError:
        batch = asset.add_batch_definition_whole_table(CHECKPOINT)
    definition = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=CHECKPOINT, data=batch, suite=ctx.suites.get(SUITE))
    )
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[SITE])],
            result_format=RESULT_FORMAT,
        )
    )


# --- validating one batch -------------------------------------------------------------------


GRID_YEARS = 10  # local days before today that profile.sql finds by binary search
# profile.sql's per-channel arrays of incomplete days: save_day_gaps.sql's columns after
# meter_id and channel
GAP_COLUMNS = ("gap_days", "gap_readings", "gap_intervals", "gap_expected")


def day_grid(today: date | None = None) -> dict[str, Any]:
    """The UTC starts of the local days (setting local_tz) from ``GRID_YEARS`` years before
    ``today`` to three days after it, for profile.sql: a reading's local day is found by
    ``width_bucket`` over these instants (0.7 s less than ``AT TIME ZONE`` on every one of 5M
    rows), and its intervals (48, 46, 50) at the same index; readings outside
    [grid_from, grid_to) fall back to ``AT TIME ZONE``."""
    zone = ZoneInfo(local_tz())
    today = today or datetime.now(zone).date()
    first = today.replace(year=today.year - GRID_YEARS, day=1)
    days = [first + timedelta(days=i) for i in range((today - first).days + 4)]
    starts = [datetime.combine(d, datetime.min.time(), zone).astimezone(UTC) for d in days]
    return {
        "day_starts": starts,
        "day_dates": days[:-1],
        "day_intervals": [int((b - a).total_seconds()) // 1800 for a, b in pairwise(starts)],
        "grid_from": starts[0],
        "grid_to": starts[-1],
    }


def channel_limits(conn: psycopg.Connection, batch_id: int) -> Callable[[str, str], float | None]:
    """``limit(meter_id, channel)``: the highest plausible kWh per 30 minutes that the cleanser
    held the batch's readings to — the meter's capacity (meter.meter.capacity_kwh), else the
    batch feed's ``max_kwh``, else setting ``max_kwh`` (cleansing.Cleanser.limit_for, the one
    place that decides it) — for an energy channel; None for a non-energy one (kVArh ... is
    stored, never judged as kWh)."""
    from meterflow import cleansing, ingest

    feed = batch_feed(conn, batch_id)
    with conn.cursor() as cur:
        meters = ingest.meter_limits(cur)
    cleanser = cleansing.Cleanser(
        feed, now=datetime.now(UTC), max_kwh=float(config.get("max_kwh")), meter_limits=meters
    )

    def limit(meter_id: str, channel: str) -> float | None:
        if channel_kind(channel) is ChannelKind.NON_ENERGY:
            return None
        return cleanser.limit_for(meter_id)

    return limit


def profile_batch(batch_id: int, conn_id: str | None = None) -> int:
    """Write the profile of ``batch_id`` (a row per meter and channel, with the limit of its
    largest reading: ``channel_limits``) and its incomplete meter-channel-days to
    staging.batch_profile and staging.batch_day_gap, replacing an earlier one, with one pass
    over its staging rows; return the number of meter-channel-days."""
    import psycopg
    from psycopg.rows import dict_row

    clock = time.perf_counter()
    with warehouse.connect(conn_id) as conn, conn.transaction():
        conn.execute(sql("forget_profile"), {"batch_id": batch_id})
        # ~1/48 of the batch's rows become groups: with the default 4 MB a 5M-row batch's
        # hash aggregate spilled to disk in 33 batches (+10-20 %)
        conn.execute("SET LOCAL work_mem = '128MB'")
        # A batch validated right after it was staged has no statistics yet: the planner
        # expects a few thousand rows, sorts the whole batch and groups it (2.6-3.5 s for 2M
        # rows, measured 2026-11-23) instead of hashing it (1.0-1.2 s, as once analyzed).
        conn.execute("SET LOCAL enable_sort = off")
        # At 5M rows the plan costs enough for LLVM to inline the functions it calls, in the
        # leader and in each worker: profile_batch took 1.37-1.46 s with that, 1.23-1.27 s
        # optimised without it, 1.42-1.50 s without JIT (11 interleaved runs, 2026-11-23)
        conn.execute("SET LOCAL jit_inline_above_cost = -1")
        tz = local_tz()
        params = {"batch_id": int(batch_id), "tz": tz, **day_grid()}
        # bound by the client (quoted literals): the grid is planned as constants
        cursor = psycopg.ClientCursor(conn, row_factory=dict_row)
        meters = cursor.execute(sql("profile"), params).fetchall()
        limit = channel_limits(conn, batch_id)
        gaps = []
        with conn.cursor().copy(sql("save_profile")) as copy:
            for meter in meters:
                # the channel's incomplete days, as parallel arrays (NULL when it has none)
                days = zip(*(meter.pop(column) or () for column in GAP_COLUMNS), strict=True)
                key = (meter["meter_id"], meter["channel"])
                gaps += [(batch_id, *key, *day) for day in sorted(days)]
                # save_profile.sql's columns
                copy.write_row((batch_id, *meter.values(), limit(*key)))
        with conn.cursor().copy(sql("save_day_gaps")) as copy:
            for gap in gaps:
                copy.write_row(gap)
    days = sum(meter["days"] for meter in meters)
    log.info(
        "batch %s profiled: %s meter-channel-day(s) of %s meter(s) in %s channel series, "
        "%s incomplete, in %.1f s",
        batch_id,
        days,
        len({meter["meter_id"] for meter in meters}),
        len(meters),
        len(gaps),
        time.perf_counter() - clock,
    )
    return days


def unexpected_rows(
    batch_id: int,
    query: str,
    params: dict[str, Any] | None = None,
    limit: int = SAMPLE_SIZE,
    conn_id: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """How many rows a check's ``rows_query`` finds in ``batch_id``, and the first ``limit``.

    ``{rows}`` in the query is the batch's staging rows, ``{profile}`` its profile (a row
    per meter), ``{gaps}`` its incomplete meter-days;
    ``%(name)s`` are ``params`` (the expectation's kwargs and the suite's parameters). Run
    only for a check that failed.
    """
    from psycopg.rows import dict_row

    text = sql("unexpected_sample").replace("{query}", query)
    text = text.replace("{rows}", f"({_statement('batch_rows')}) AS batch_rows")
    text = text.replace("{profile}", f"({_statement('batch_profile')}) AS batch_profile")
    text = text.replace("{gaps}", f"({_statement('batch_day_gaps')}) AS batch_day_gaps")
    values = {**(params or {}), "batch_id": batch_id, "limit": limit}
    with warehouse.connect(conn_id) as conn, conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(text, values).fetchall()
    total = int(found[0]["unexpected_total"]) if found else 0
    return total, [{k: v for k, v in r.items() if k != "unexpected_total"} for r in found]


def _query_params(kwargs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """An expectation's scalar kwargs with ``$PARAMETER`` values resolved from ``params`` (the
    batch's ``expectation_parameters``), plus those parameters: the values a ``rows_query`` may
    name."""
    out: dict[str, Any] = dict(params)
    for key, value in kwargs.items():
        if isinstance(value, dict) and "$PARAMETER" in value:
            value = params.get(value["$PARAMETER"])
        if isinstance(value, (str, int, float)) or value is None:
            out[key] = value
    return out


def _failure(
    res: Any, batch_id: int, params: dict[str, Any], conn_id: str | None = None
) -> Failure:
    """One failed expectation: its check, severity, and the rows its ``rows_query`` finds (a
    count and a sample); without a rows_query, GX's own figures."""
    cfg = res.expectation_config
    result = res.result or {}
    kwargs = dict(cfg.kwargs)
    meta = cfg.meta or {}
    count = result.get("unexpected_count")
    if count is None:
        count = result.get("observed_value")
    sample: list[Any] = list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
    if meta.get("rows_query"):
        count, rows = unexpected_rows(
            batch_id, meta["rows_query"], _query_params(kwargs, params), conn_id=conn_id
        )
        sample = rows
    severity = getattr(cfg, "severity", None) or cfg.get("severity")
    column = kwargs.get("column") or (
        ",".join(kwargs["column_list"]) if kwargs.get("column_list") else None
    )
    if column is None and kwargs.get("column_A"):
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    return Failure(
        check=meta.get("check", cfg.type),
        expectation=cfg.type,
        severity=str(getattr(severity, "value", severity) or "critical"),
        column=column,
        unexpected_count=int(count) if isinstance(count, (int, float)) else None,
        sample=json.loads(json.dumps(sample, default=str)),
    )


def _docs_relpath(ctx: FileDataContext, result_id: Any) -> str | None:
    for site in ctx.get_docs_sites_urls(resource_identifier=result_id, site_name=SITE):
        url = site.get("site_url")
        if url:
            path = Path(unquote(urlparse(url).path))
            try:
                return path.relative_to(docs_dir()).as_posix()
            except ValueError:
                return str(path)
    return None


def run_checkpoint(
    batch_id: int,
    run_name: str,
    conn_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[ExpectationSuiteValidationResult, str | None]:
    """Validate staging rows of ``batch_id`` with a GX Checkpoint that also updates Data Docs,
    its ``$PARAMETER`` values from ``params`` (default ``expectation_parameters()``); return
    GX's suite result and the page's path relative to the Data Docs site."""
    from great_expectations.core.run_identifier import RunIdentifier

    with _locked(gx_root()):
        ctx = context(conn_id, batch_id)
        outcome = _checkpoint(ctx).run(
            expectation_parameters=params if params is not None else expectation_parameters(),
            run_id=RunIdentifier(run_name=run_name),
        )
        ((result_id, result),) = outcome.run_results.items()
        return result, _docs_relpath(ctx, result_id)


def validate_batch(
    batch_id: int, *, publish: bool = True, alert: bool = True, conn_id: str | None = None
) -> Verdict:
    """Validate one batch, record the result, set its status, publish docs, alert if rejected.

    A batch may be (re-)validated while it is staged, validated or rejected; a promoted,
    loading or failed batch is refused. An expectation that could not be evaluated (SQL
    error) raises QualityError: that is a fault to retry, not a verdict on the data.
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with warehouse.connect(conn_id) as conn:
        file_name, _status = _batch(conn, batch_id)
        params = expectation_parameters(batch_feed(conn, batch_id))
        conn.rollback()
    run_name = f"batch_{batch_id}-{started:%Y%m%dT%H%M%S%fZ}"
    profiled = time.perf_counter()
    profile_batch(batch_id, conn_id)
    profiled = time.perf_counter() - profiled
    result, docs_path = run_checkpoint(batch_id, run_name, conn_id, params)

    broken = [r for r in result.results if (r.exception_info or {}).get("raised_exception")]
    if broken:
        r = broken[0]
        raise QualityError(
            f"batch {batch_id}: {r.expectation_config.type} could not be evaluated: "
            f"{(r.exception_info or {}).get('exception_message')}"
        )
    failures = [_failure(r, batch_id, params, conn_id) for r in result.results if not r.success]
    verdict = Verdict(
        batch_id=batch_id,
        file_name=file_name,
        suite=SUITE,
        verdict=(
            BatchStatus.REJECTED
            if any(f.severity == "critical" for f in failures)
            else BatchStatus.VALIDATED
        ).value,
        success=bool(result.success),
        evaluated=len(result.results),
        failures=failures,
        docs_path=docs_path,
        run_name=run_name,
        started_at=started,
    )
    if publish and docs_path:
        publish_docs([docs_path, "index.html"])
    record(verdict, conn_id)
    verdict.seconds = time.perf_counter() - clock
    verdict.profile_seconds = profiled
    log.info("%s (%.1f s)", verdict.summary(), verdict.seconds)
    for f in failures:
        log.info("batch %s failed %s", batch_id, f.line())
    if docs_path:
        log.info("Data Docs page: %s", docs_dir() / docs_path)
    if alert and verdict.verdict == BatchStatus.REJECTED:
        alert_rejected(verdict)
    return verdict


def _batch(conn: psycopg.Connection, batch_id: int) -> tuple[str, str]:
    row = conn.execute(sql("batch_for_update"), {"batch_id": batch_id}).fetchone()
    if row is None:
        raise NotCheckable(f"batch {batch_id} does not exist in audit.load_batch")
    _, _, file_name, status, _, purged_at = row
    if status not in CHECKABLE:
        raise NotCheckable(
            f"batch {batch_id} ({file_name}) is {status}: only staged, validated or rejected "
            "batches can be validated"
        )
    if purged_at is not None:
        raise NotCheckable(
            f"batch {batch_id} ({file_name}) is {status} and its staged rows were purged on "
            f"{purged_at:%Y-%m-%d} (retention): land the file again to load it anew"
        )
    return file_name, status


def record(verdict: Verdict, conn_id: str | None = None) -> None:
    """audit.quality_result row and the batch's status, in one transaction."""
    with warehouse.connect(conn_id) as conn, conn.transaction():
        _batch(conn, verdict.batch_id)  # locks the row; refuses a batch promoted meanwhile
        conn.execute(
            sql("record_result"),
            {
                "batch_id": verdict.batch_id,
                "suite": verdict.suite,
                "success": verdict.success,
                "verdict": verdict.verdict,
                "evaluated": verdict.evaluated,
                "failed": len(verdict.failures),
                "failures": json.dumps([asdict(f) for f in verdict.failures]),
                "docs_path": verdict.docs_path,
                "run_name": verdict.run_name,
                "started_at": verdict.started_at,
            },
        )
        conn.execute(sql("set_status"), {"batch_id": verdict.batch_id, "verdict": verdict.verdict})


def pending_batches(conn_id: str | None = None) -> list[int]:
    """Every batch with status 'staged' (not only the ones of the latest event)."""
    with warehouse.connect(conn_id) as conn:
        return [b for (b,) in conn.execute(sql("pending_batches"))]


def alert_rejected(verdict: Verdict) -> None:
    from meterflow import alerts

    lines = [
        f"Batch {verdict.batch_id} from file {verdict.file_name} was REJECTED by the quality "
        f"gate (suite {verdict.suite}); it will not be promoted into meter.readings_a|b|c.",
        "",
        "Failed expectations:",
        *(f"  {f.line()}" for f in verdict.failures),
        "",
        f"Data Docs page: {verdict.docs_path or '-'} (under {docs_dir()} and "
        f"s3://{config.get('s3_bucket')}/{config.s3_prefix(DOCS_PREFIX)}/)",
        "Fix the file and land it again under a new name, or re-check this batch by triggering "
        f"meter_quality with batch_id={verdict.batch_id}.",
    ]
    checks = "; ".join(f.line() for f in verdict.failures[:3])
    alerts.notify(
        f"batch {verdict.batch_id} ({verdict.file_name}) rejected by the quality gate: {checks}",
        "\n".join(lines),
        incident=f"batch:{verdict.batch_id}",
        kind="batch_rejected",
    )


# --- publishing -----------------------------------------------------------------------------


def publish_docs(changed: list[str]) -> list[str]:
    """Copy the Data Docs site to s3://<bucket>/data-docs/: the given pages (relative paths)
    every time, the rest of the site (styles, suite pages) when S3 lacks it. Returns keys."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    root = docs_dir()
    area = config.s3_prefix(DOCS_PREFIX)
    bucket = config.get("s3_bucket")
    client = S3Hook(aws_conn_id=config.get("aws_conn_id")).get_conn()
    present: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{area}/"):
        present.update(obj["Key"] for obj in page.get("Contents", []))
    wanted = set(changed)
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        key = f"{area}/{rel}"
        if rel in wanted or key not in present:
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": ctype})
            keys.append(key)
    log.info("published %d Data Docs file(s) to s3://%s/%s/", len(keys), bucket, area)
    return keys
