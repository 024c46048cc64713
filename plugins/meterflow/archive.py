"""Archive old readings to S3 as verified Parquet, and restore them: nothing lost.

``archive_readings`` takes every UTC day of meter.readings_a|b|c older than the cutoff
(midnight UTC, ``retention_days`` before now) and, per day:

1. exports the day's rows (one REPEATABLE READ snapshot: the rows, their count, kWh sum and
   fingerprint, and count and sum per channel) to Parquet (pyarrow, zstd; schema version 2,
   keyed by meter, channel and interval start) at
   ``archive/source=<S>/year=YYYY/month=MM/day=DD/readings_<s>_<day>_<sha12>.parquet``;
2. uploads it and reads it back: size, sha256, and row count and kWh sum from the Parquet
   itself, in total and per channel, must match the snapshot;
3. writes ``manifest.json`` beside it (rows, kWh sum, first/last interval_start, sha256 and
   size of each object, schema version) and reads that back too; then removes any other
   object under the day's prefix (an archive the merge replaced, or an upload an interrupted
   run left without a manifest), so the day holds exactly what its manifest names.

Only when every day of the source is on S3 and verified does anything leave the warehouse: per
monthly partition, one transaction either drops the partition (its whole month is past the
cutoff and every day in it still has the exported fingerprint) or deletes the verified days
(each delete returns what it removed; a day whose rows changed since the export is rolled back
to its savepoint and left for the next run). In that same transaction the days' objects are
read back from S3 once more and every reading that leaves must be in them, value for value, or
beaten there by the promotion rule (``meter.archive_holds``); otherwise nothing leaves. An S3
or network failure at any point raises before the first delete; the retry redoes the work with
the same content-addressed keys, so nothing is duplicated. A day archived earlier that
received late readings is merged with its archive by the promotion rule: the higher quality
wins, on equal quality the newer batch (so a correction promoted after the archive is what
the archive then holds).

``archive_landing`` gzips files in ``landing/processed/`` older than the cutoff to
``raw/<feed>/<yyyy>/<mm>/<dd>/<file>.gz`` (the file's modification day), verifies the copy and
removes the local file. ``restore`` reads archived days back into the source tables,
idempotently; it reads schema version 2 and the version 1 of earlier runs (no channel column:
its readings are E1, ``models.DEFAULT_CHANNEL``). Every step is a row in audit.archive_run.
Marts are never touched: they keep the aggregates of archived days.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from meterflow import SQL_DIR, aggregation, config, warehouse
from meterflow.models import DEFAULT_CHANNEL, SOURCES

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: a channel column (issue 17); 1: none, every reading is DEFAULT_CHANNEL
READABLE_VERSIONS = (1, 2)  # what restore (and the merge of a late reading) reads
ARCHIVE_PREFIX = "archive"
RAW_PREFIX = "raw"
MANIFEST = "manifest.json"
COMPRESSION = "zstd"
# Source letter → table: the only place table names come from (never from input).
TABLES = {s: ("meter", f"readings_{s.lower()}") for s in SOURCES}
COLUMNS = ["meter_id", "channel", "interval_start", "kwh", "quality", "batch_id", "ingested_at"]
_CSV_COLUMNS = [
    "meter_id",
    "channel",
    "interval_start_us",
    "kwh",
    "quality",
    "batch_id",
    "ingested_at_us",
]
_TEMP_TABLE = (
    "CREATE TEMP TABLE {} (meter_id text, channel text NOT NULL, interval_start_us bigint, "
    "kwh numeric, quality char(1), batch_id bigint, ingested_at_us bigint) ON COMMIT DROP"
)
# Per channel: (rows, sum of the value column). kWh for energy channels, the channel's own
# unit (kVArh ...) for the others: a checksum, never an energy figure.
ChannelStats = dict[str, tuple[int, Decimal]]
_MAX_PRECISION = 38


class ArchiveError(RuntimeError):
    """An archive copy does not match the warehouse (nothing was deleted)."""


# --- small pieces -------------------------------------------------------------------------


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Start (midnight UTC) of the first day that stays: days before it are archived."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    day = (now.astimezone(UTC) - timedelta(days=retention_days)).date()
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_prefix(source: str, day: date) -> str:
    area = config.s3_prefix(ARCHIVE_PREFIX)
    return f"{area}/source={source}/year={day:%Y}/month={day:%m}/day={day:%d}"


def manifest_key(source: str, day: date) -> str:
    return f"{day_prefix(source, day)}/{MANIFEST}"


def _table(source: str) -> sql.Identifier:
    if source not in TABLES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return sql.Identifier(*TABLES[source])


def _query(name: str, **identifiers: sql.Composable) -> sql.Composed:
    """include/sql/archive/<name>.sql with its {identifiers} filled in."""
    text = (SQL_DIR / "archive" / f"{name}.sql").read_text(encoding="utf-8")
    return sql.SQL(text).format(**identifiers)  # type: ignore[arg-type]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _s3():
    """A boto3 S3 client from the Airflow connection (endpoint_url extra for the local S3)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=config.get("aws_conn_id")).get_conn()


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in {"404", "NoSuchKey", "NotFound"}


def _get(s3, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist (other errors raise)."""
    from botocore.exceptions import ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def _put(s3, bucket: str, key: str, data: bytes, content_type: str, **meta: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        Metadata={"sha256": _sha256(data), **meta},
    )


def _read_back(s3, bucket: str, key: str, size: int, sha256: str) -> bytes:
    """Download what was uploaded and check its size and sha256."""
    data = _get(s3, bucket, key)
    if data is None:
        raise ArchiveError(f"s3://{bucket}/{key}: not found on S3")
    if len(data) != size or _sha256(data) != sha256:
        raise ArchiveError(
            f"s3://{bucket}/{key}: read back {len(data)} bytes sha256 {_sha256(data)[:12]}…, "
            f"uploaded {size} bytes sha256 {sha256[:12]}…"
        )
    return data


@dataclass
class Audit:
    """Writes audit.archive_run rows on its own autocommit connection."""

    run_id: str
    conn_id: str | None = None
    _conn: psycopg.Connection | None = None

    def __call__(
        self,
        step: str,
        status: str = "ok",
        *,
        source: str | None = None,
        day: date | None = None,
        rows: int | None = None,
        kwh_sum: Decimal | None = None,
        s3_key: str | None = None,
        detail: str | None = None,
        conn: psycopg.Connection | None = None,
    ) -> None:
        """Record one step; with ``conn``, inside that connection's current transaction."""
        params = {
            "run_id": self.run_id,
            "source": source,
            "day": day,
            "step": step,
            "rows": rows,
            "kwh_sum": kwh_sum,
            "s3_key": s3_key,
            "status": status,
            "detail": detail,
        }
        target = conn
        if target is None:
            if self._conn is None or self._conn.closed:
                self._conn = warehouse.connect(self.conn_id, autocommit=True)
                # A trail line, not data: a database crash may lose the last few, never a
                # reading (deletes commit durably, with their own audit rows).
                self._conn.execute("SET synchronous_commit = off")
            target = self._conn
        target.execute(_query("audit_step"), params)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# --- Parquet ------------------------------------------------------------------------------


def _arrow_schema(scale: int) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("meter_id", pa.string(), nullable=False),
            pa.field("channel", pa.string(), nullable=False),
            pa.field("interval_start", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("kwh", pa.decimal128(_MAX_PRECISION, scale), nullable=False),
            pa.field("quality", pa.string(), nullable=False),
            pa.field("batch_id", pa.int64(), nullable=False),
            pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ],
        metadata={"meterflow.schema_version": str(SCHEMA_VERSION)},
    )


def _scale(kwh: pa.Array) -> int:
    """Largest number of decimals among kWh values given as text."""
    import pyarrow.compute as pc

    if len(kwh) == 0:
        return 0
    dot = pc.find_substring(kwh, ".")
    decimals = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(pc.utf8_length(kwh), dot), 1))
    return int(pc.max(decimals).as_py() or 0)


def csv_to_table(data: bytes) -> pa.Table:
    """Export CSV (see export_day.sql) → an Arrow table with the archive schema. kWh becomes
    decimal128 with the day's largest scale, so every value keeps its exact digits."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not data:
        return _arrow_schema(0).empty_table()
    raw = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=_CSV_COLUMNS),
        convert_options=pacsv.ConvertOptions(
            column_types={
                "meter_id": pa.string(),
                "channel": pa.string(),
                "interval_start_us": pa.int64(),
                "kwh": pa.string(),
                "quality": pa.string(),
                "batch_id": pa.int64(),
                "ingested_at_us": pa.int64(),
            },
            strings_can_be_null=False,
        ),
    )
    kwh = raw["kwh"].combine_chunks()
    scale = _scale(kwh)
    if scale > _MAX_PRECISION - 12:
        raise ArchiveError(f"kWh values with {scale} decimals do not fit the archive's decimal")
    schema = _arrow_schema(scale)
    arrays = [
        raw["meter_id"],
        raw["channel"],
        raw["interval_start_us"].cast(pa.timestamp("us", tz="UTC")),
        kwh.cast(pa.decimal128(_MAX_PRECISION, scale)),
        raw["quality"],
        raw["batch_id"],
        raw["ingested_at_us"].cast(pa.timestamp("us", tz="UTC")),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def table_to_parquet(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression=COMPRESSION)
    return buf.getvalue()


def parquet_stats(data: bytes) -> tuple[pa.Table, int, Decimal]:
    """(table, row count, kWh sum) read from Parquet bytes."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    total = pc.sum(table["kwh"]).as_py() if table.num_rows else Decimal(0)
    return table, table.num_rows, Decimal(total or 0)


def channels(table: pa.Table) -> pa.Array | pa.ChunkedArray:
    """The table's channel column; an object of schema version 1 has none: every reading in it
    is ``DEFAULT_CHANNEL`` (E1, import energy), as V015 made every earlier reading."""
    import pyarrow as pa

    if "channel" in table.column_names:
        return table["channel"]
    return pa.array([DEFAULT_CHANNEL] * table.num_rows, pa.string())


def channel_stats(table: pa.Table) -> ChannelStats:
    """(rows, sum of kwh) per channel of an archive table (either schema version)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return {}
    grouped = (
        pa.table({"channel": channels(table), "kwh": table["kwh"]})
        .group_by("channel")
        .aggregate([("kwh", "count", pc.CountOptions(mode="all")), ("kwh", "sum")])
    )
    return {
        row["channel"]: (int(row["kwh_count"]), Decimal(row["kwh_sum"] or 0))
        for row in grouped.to_pylist()
    }


def stats_json(stats: ChannelStats) -> dict[str, dict[str, Any]]:
    """Per-channel figures as the manifest writes them (kWh sums as exact decimal strings)."""
    return {c: {"rows": n, "kwh_sum": str(s)} for c, (n, s) in sorted(stats.items())}


def stats_from_json(data: dict[str, dict[str, Any]]) -> ChannelStats:
    return {c: (int(v["rows"]), Decimal(v["kwh_sum"])) for c, v in data.items()}


def table_to_csv(table: pa.Table) -> bytes:
    """An archive table (schema version 1 or 2) as CSV for COPY into a _restore/_archived temp
    table; a version-1 table's readings get ``DEFAULT_CHANNEL``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    flat = pa.table(
        {
            "meter_id": table["meter_id"],
            "channel": channels(table),
            "interval_start_us": table["interval_start"].cast(pa.int64()),
            "kwh": table["kwh"],
            "quality": table["quality"],
            "batch_id": table["batch_id"],
            "ingested_at_us": table["ingested_at"].cast(pa.int64()),
        }
    )
    buf = io.BytesIO()
    pacsv.write_csv(flat, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()


# --- planning -----------------------------------------------------------------------------


@dataclass
class DayPlan:
    source: str
    day: date
    rows: int
    kwh_sum: Decimal


@dataclass
class Snapshot:
    """What one day held in the warehouse when it was exported."""

    rows: int
    kwh_sum: Decimal
    first_interval: datetime | None
    last_interval: datetime | None
    fingerprint: str
    channels: ChannelStats = field(default_factory=dict)


@dataclass
class ArchivedDay:
    source: str
    day: date
    snapshot: Snapshot
    manifest_key: str
    archived_rows: int
    archived_kwh: Decimal
    objects: list[dict[str, Any]] = field(default_factory=list)


def candidate_days(conn: psycopg.Connection, source: str, cutoff_at: datetime) -> list[DayPlan]:
    rows = conn.execute(
        _query("candidate_days", table=_table(source)), {"cutoff": cutoff_at}
    ).fetchall()
    return [DayPlan(source, d, n, Decimal(s)) for d, n, s in rows]


def partitions(conn: psycopg.Connection, source: str) -> list[tuple[str, str, datetime, datetime]]:
    """(schema, partition, lower bound, upper bound) of a source table's partitions."""
    parent = ".".join(TABLES[source])
    return conn.execute(_query("partitions"), {"parent": parent}).fetchall()


# --- archiving readings -------------------------------------------------------------------


def _export_day(
    conn: psycopg.Connection, s3, bucket: str, source: str, day: date
) -> tuple[Snapshot, bytes, str | None, list[str]]:
    """One REPEATABLE READ snapshot of the day: its stats, and its Parquet (merged with an
    existing archive of the day). Returns (snapshot, parquet, previous manifest's text or None,
    keys of the previous objects)."""
    start, end = day_bounds(day)
    table = _table(source)
    params = {"start": start, "end": end}
    previous = _get(s3, bucket, manifest_key(source, day))
    old_keys: list[str] = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows, kwh_sum, first, last, fingerprint = conn.execute(
            _query("day_snapshot", table=table), params
        ).fetchone()
        per_channel = {
            c: (n, Decimal(s))
            for c, n, s in conn.execute(_query("day_channels", table=table), params)
        }
        snap = Snapshot(rows, Decimal(kwh_sum), first, last, fingerprint, per_channel)
        query = _query("export_day", table=table)
        if previous is not None:
            old = json.loads(previous)
            old_keys = [o["key"] for o in old["objects"]]
            conn.execute(sql.SQL(_TEMP_TABLE).format(sql.Identifier("_archived")))
            for obj in old["objects"]:
                data = _read_back(s3, bucket, obj["key"], obj["bytes"], obj["sha256"])
                archived, _, _ = parquet_stats(data)
                with conn.cursor().copy("COPY _archived FROM STDIN (FORMAT csv)") as copy:
                    copy.write(table_to_csv(archived))
            query = _query("export_merged_day", table=table)
        with conn.cursor().copy(query, params) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
    return snap, table_to_parquet(csv_to_table(data)), previous, old_keys


def archive_day(
    conn: psycopg.Connection, s3, bucket: str, source: str, day: date, audit: Audit
) -> ArchivedDay | None:
    """Export, upload, read back and verify one day, then write its manifest. Deletes nothing."""
    import pyarrow.compute as pc

    snap, parquet, previous, old_keys = _export_day(conn, s3, bucket, source, day)
    if snap.rows == 0:
        log.info("%s %s: no readings left to archive", source, day)
        return None
    table, rows, kwh_sum = parquet_stats(parquet)
    per_channel = channel_stats(table)
    sha = _sha256(parquet)
    key = f"{day_prefix(source, day)}/readings_{source.lower()}_{day:%Y-%m-%d}_{sha[:12]}.parquet"
    merged = previous is not None
    # A fresh day must hold exactly the warehouse's rows, channel by channel; a merged day at
    # least as many keys of every channel.
    exact = (rows, kwh_sum) == (snap.rows, snap.kwh_sum) and per_channel == snap.channels
    short = [c for c, (n, _) in snap.channels.items() if per_channel.get(c, (0, 0))[0] < n]
    if (merged and (rows < snap.rows or short)) or (not merged and not exact):
        raise ArchiveError(
            f"{source} {day}: Parquet holds {rows} rows / {kwh_sum} kWh "
            f"({_stats_text(per_channel)}), the warehouse {snap.rows} / {snap.kwh_sum} "
            f"({_stats_text(snap.channels)})"
        )
    audit(
        "export",
        source=source,
        day=day,
        rows=rows,
        kwh_sum=kwh_sum,
        s3_key=key,
        detail=f"merged with the earlier archive of the day ({len(old_keys)} object(s))"
        if merged
        else None,
    )
    _put(s3, bucket, key, parquet, "application/vnd.apache.parquet", rows=str(rows))
    audit(
        "upload",
        source=source,
        day=day,
        rows=rows,
        kwh_sum=kwh_sum,
        s3_key=key,
        detail=f"{len(parquet)} bytes sha256 {sha}",
    )

    back = _read_back(s3, bucket, key, len(parquet), sha)
    back_table, back_rows, back_kwh = parquet_stats(back)
    back_channels = channel_stats(back_table)
    if (back_rows, back_kwh, back_channels) != (rows, kwh_sum, per_channel):
        raise ArchiveError(
            f"s3://{bucket}/{key}: read back {back_rows} rows / {back_kwh} kWh "
            f"({_stats_text(back_channels)}), wrote {rows} / {kwh_sum} "
            f"({_stats_text(per_channel)})"
        )
    audit(
        "verify",
        source=source,
        day=day,
        rows=back_rows,
        kwh_sum=back_kwh,
        s3_key=key,
        detail="size, sha256, row count and kWh sum per channel read back from S3: "
        + _stats_text(back_channels),
    )

    starts = table["interval_start"]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "table": ".".join(TABLES[source]),
        "day": day.isoformat(),
        "rows": rows,
        "kwh_sum": str(kwh_sum),
        "channels": stats_json(per_channel),
        "min_interval_start": pc.min(starts).as_py().isoformat() if rows else None,
        "max_interval_start": pc.max(starts).as_py().isoformat() if rows else None,
        "columns": [f"{f.name}:{f.type}" for f in table.schema],
        "compression": COMPRESSION,
        "objects": [
            {
                "key": key,
                "bytes": len(parquet),
                "sha256": sha,
                "rows": rows,
                "kwh_sum": str(kwh_sum),
                "channels": stats_json(per_channel),
            }
        ],
        "run_id": audit.run_id,
        "created_at": datetime.now(UTC).isoformat(),
    }
    body = json.dumps(manifest, indent=2).encode("utf-8")
    mkey = manifest_key(source, day)
    _put(s3, bucket, mkey, body, "application/json")
    if json.loads(_read_back(s3, bucket, mkey, len(body), _sha256(body))) != manifest:
        raise ArchiveError(f"s3://{bucket}/{mkey}: manifest read back differs")
    audit("manifest", source=source, day=day, rows=rows, kwh_sum=kwh_sum, s3_key=mkey)
    # Only now, with the new manifest verified, may other objects of the day go: the earlier
    # archive a merge replaced, or an upload an interrupted run left without a manifest.
    for stale in sorted(_day_objects(s3, bucket, source, day) - {key, mkey}):
        s3.delete_object(Bucket=bucket, Key=stale)
        audit(
            "replace",
            source=source,
            day=day,
            s3_key=stale,
            detail=f"superseded by {key}"
            + (" (merged archive)" if stale in old_keys else " (left by an interrupted run)"),
        )
    return ArchivedDay(source, day, snap, mkey, rows, kwh_sum, manifest["objects"])


def _stats_text(stats: ChannelStats) -> str:
    """``E1 48 rows / 12.5, B1 48 rows / 3.25`` for messages and the audit."""
    return ", ".join(f"{c} {n} rows / {s}" for c, (n, s) in sorted(stats.items())) or "no rows"


def _day_objects(s3, bucket: str, source: str, day: date) -> set[str]:
    """Keys of every object under the day's archive prefix."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=day_prefix(source, day) + "/"
    )
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _load_verify(conn: psycopg.Connection, s3, bucket: str, days: list[ArchivedDay]) -> None:
    """The days' objects, read back from S3 now (size and sha256 checked), into the temporary
    table _verify of the current transaction: what removal compares the warehouse's rows with."""
    conn.execute(sql.SQL(_TEMP_TABLE).format(sql.Identifier("_verify")))
    for d in days:
        for obj in d.objects:
            data = _read_back(s3, bucket, obj["key"], obj["bytes"], obj["sha256"])
            with conn.cursor().copy("COPY _verify FROM STDIN (FORMAT csv)") as copy:
                copy.write(table_to_csv(parquet_stats(data)[0]))
    conn.execute("ANALYZE _verify")


def _not_held(source: str, day: date | None, n: int, where: str) -> ArchiveError:
    return ArchiveError(
        f"{source} {day or ''} {where}: {n} reading(s) of the warehouse are not in the object "
        "read back from S3 (neither the same values nor a reading that beats them by the "
        "promotion rule); the removals of this partition are rolled back"
    )


def _remove_partition_days(
    conn: psycopg.Connection,
    s3,
    bucket: str,
    source: str,
    schema: str,
    name: str,
    droppable: bool,
    days: list[ArchivedDay],
    audit: Audit,
) -> tuple[int, Decimal, bool]:
    """One transaction: drop the partition when its whole month is archived unchanged,
    else delete each verified day whose rows are still the exported ones.
    Returns (rows removed, kWh removed, dropped)."""
    part = sql.Identifier(schema, name)
    by_day = {d.day: d for d in days}
    removed, removed_kwh = 0, Decimal(0)
    with conn.transaction():
        _load_verify(conn, s3, bucket, days)
        if droppable:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(part))
            current = {
                d: (n, Decimal(s), fp)
                for d, n, s, fp in conn.execute(_query("partition_days", partition=part))
            }
            expected = {
                d.day: (d.snapshot.rows, d.snapshot.kwh_sum, d.snapshot.fingerprint)
                for d in days
                if d.snapshot.rows
            }
            if current == expected:
                (unheld,) = conn.execute(_query("partition_unheld", partition=part)).fetchone()
                if unheld:
                    raise _not_held(source, None, unheld, f"partition {schema}.{name}")
                conn.execute(sql.SQL("DROP TABLE {}").format(part))
                for d in days:
                    audit(
                        "delete",
                        source=source,
                        day=d.day,
                        rows=d.snapshot.rows,
                        kwh_sum=d.snapshot.kwh_sum,
                        s3_key=d.manifest_key,
                        detail=f"partition {schema}.{name} dropped",
                        conn=conn,
                    )
                    removed += d.snapshot.rows
                    removed_kwh += d.snapshot.kwh_sum
                audit(
                    "drop_partition",
                    source=source,
                    rows=removed,
                    kwh_sum=removed_kwh,
                    detail=f"{schema}.{name}: every day archived and verified",
                    conn=conn,
                )
                return removed, removed_kwh, True
            log.info("%s.%s changed since export: deleting day by day", schema, name)
        for d in sorted(by_day.values(), key=lambda x: x.day):
            start, end = day_bounds(d.day)
            with conn.transaction():  # a savepoint per day
                n, s, fp, unheld = conn.execute(
                    _query("delete_day", table=_table(source)), {"start": start, "end": end}
                ).fetchone()
                if (n, Decimal(s), fp) != (
                    d.snapshot.rows,
                    d.snapshot.kwh_sum,
                    d.snapshot.fingerprint,
                ):
                    raise _DayChanged(d, n, Decimal(s))
                if unheld:
                    raise _not_held(source, d.day, unheld, "delete")
                audit(
                    "delete",
                    source=source,
                    day=d.day,
                    rows=n,
                    kwh_sum=Decimal(s),
                    s3_key=d.manifest_key,
                    conn=conn,
                )
                removed += n
                removed_kwh += Decimal(s)
    return removed, removed_kwh, False


class _DayChanged(Exception):
    def __init__(self, day: ArchivedDay, rows: int, kwh: Decimal) -> None:
        super().__init__(f"{day.source} {day.day}")
        self.day, self.rows, self.kwh = day, rows, kwh


def _remove_days(
    conn: psycopg.Connection,
    s3,
    bucket: str,
    source: str,
    cutoff_at: datetime,
    archived: list[ArchivedDay],
    audit: Audit,
) -> tuple[int, Decimal, list[str]]:
    """Remove the verified days from the warehouse, one transaction per partition."""
    removed, removed_kwh, dropped = 0, Decimal(0), []
    for schema, name, lower, upper in partitions(conn, source):
        days = [d for d in archived if lower.date() <= d.day < upper.date()]
        if not days:
            continue
        droppable = upper <= cutoff_at
        while True:
            try:
                n, kwh, was_dropped = _remove_partition_days(
                    conn, s3, bucket, source, schema, name, droppable, days, audit
                )
                break
            except _DayChanged as changed:
                # The partition's transaction rolled back: keep that day, retry the others.
                audit(
                    "delete",
                    "skipped",
                    source=source,
                    day=changed.day.day,
                    rows=changed.rows,
                    kwh_sum=changed.kwh,
                    s3_key=changed.day.manifest_key,
                    detail="rows changed since the export: kept; the next run archives "
                    "the day again",
                )
                days = [d for d in days if d.day != changed.day.day]
                droppable = False
                if not days:
                    n, kwh, was_dropped = 0, Decimal(0), False
                    break
        removed += n
        removed_kwh += kwh
        if was_dropped:
            dropped.append(f"{schema}.{name}")
    return removed, removed_kwh, dropped


def archive_readings(
    *,
    now: datetime | None = None,
    retention_days: int | None = None,
    sources: Iterable[str] = SOURCES,
    dry_run: bool = False,
    run_id: str | None = None,
    conn_id: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Archive the readings older than the cutoff; return a summary per source.

    Every day of a source is exported and verified on S3 before any of its rows are deleted;
    a dry run only reports what would move.
    """
    now = now or datetime.now(UTC)
    retention = int(retention_days if retention_days is not None else config.get("retention_days"))
    cutoff_at = cutoff(now, retention)
    bucket = bucket or config.get("s3_bucket")
    run_id = run_id or f"archive__{now:%Y%m%dT%H%M%S}"
    summary: dict[str, Any] = {
        "cutoff": cutoff_at.isoformat(),
        "dry_run": dry_run,
        "bucket": bucket,
        "sources": {},
    }
    audit = Audit(run_id, conn_id)
    try:
        with warehouse.connect(conn_id, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            for source in sources:
                summary["sources"][source] = _archive_source(
                    conn, source, cutoff_at, bucket, dry_run, audit
                )
    finally:
        audit.close()
    return summary


def _archive_source(
    conn: psycopg.Connection,
    source: str,
    cutoff_at: datetime,
    bucket: str,
    dry_run: bool,
    audit: Audit,
) -> dict[str, Any]:
    plan = candidate_days(conn, source, cutoff_at)
    total_rows = sum(d.rows for d in plan)
    total_kwh = sum((d.kwh_sum for d in plan), Decimal(0))
    whole = [
        f"{schema}.{name}"
        for schema, name, lower, upper in partitions(conn, source)
        if upper <= cutoff_at and any(lower.date() <= d.day < upper.date() for d in plan)
    ]
    result: dict[str, Any] = {
        "days": len(plan),
        "rows": total_rows,
        "kwh_sum": str(total_kwh),
        "first_day": plan[0].day.isoformat() if plan else None,
        "last_day": plan[-1].day.isoformat() if plan else None,
        "partitions_to_drop": whole,
    }
    if dry_run:
        log.info(
            "dry run %s: would archive %d day(s), %s rows, %s kWh before %s; drop %s",
            source,
            len(plan),
            f"{total_rows:,}",
            total_kwh,
            cutoff_at.date(),
            whole or "none",
        )
        return result
    if not plan:
        log.info("%s: nothing older than %s", source, cutoff_at.date())
        return {**result, "rows_removed": 0, "partitions_dropped": []}
    s3 = _s3()
    archived: list[ArchivedDay] = []
    for item in plan:
        try:
            done = archive_day(conn, s3, bucket, source, item.day, audit)
        except Exception as exc:
            _record_failure(audit, "archive", source, item.day, exc)
            raise
        if done is not None:
            archived.append(done)
    try:
        removed, removed_kwh, dropped = _remove_days(
            conn, s3, bucket, source, cutoff_at, archived, audit
        )
    except Exception as exc:
        _record_failure(audit, "delete", source, None, exc)
        raise
    log.info(
        "%s: archived %d day(s) before %s to s3://%s/%s/source=%s/; removed %s rows "
        "(%s kWh) from the warehouse, dropped %s",
        source,
        len(archived),
        cutoff_at.date(),
        bucket,
        config.s3_prefix(ARCHIVE_PREFIX),
        source,
        f"{removed:,}",
        removed_kwh,
        dropped or "no partition",
    )
    return {
        **result,
        "rows_removed": removed,
        "kwh_removed": str(removed_kwh),
        "partitions_dropped": dropped,
    }


def _record_failure(
    audit: Audit, step: str, source: str | None, day: date | None, exc: Exception
) -> None:
    """Audit a failed step; never hides the original error (the audit DB may be down too)."""
    try:
        audit(step, "failed", source=source, day=day, detail=f"{type(exc).__name__}: {exc}"[:2000])
    except Exception:
        log.exception("could not record the failure of %s %s %s", step, source, day)


# --- landing files ------------------------------------------------------------------------


def _processed_files(landing: Path, cutoff_at: datetime) -> Iterator[tuple[Path, str, date]]:
    """(path, feed, modification day) of processed files older than the cutoff."""
    processed = landing / "processed"
    if not processed.is_dir():
        return
    for path in sorted(processed.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if mtime >= cutoff_at:
            continue
        rel = path.relative_to(processed)
        feed = rel.parts[0] if len(rel.parts) > 1 else "_"
        yield path, feed, mtime.date()


def archive_landing(
    *,
    now: datetime | None = None,
    retention_days: int | None = None,
    landing_dir: Path | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    conn_id: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Gzip processed landing files older than the cutoff to S3 raw/, verify, remove locally."""
    now = now or datetime.now(UTC)
    retention = int(retention_days if retention_days is not None else config.get("retention_days"))
    cutoff_at = cutoff(now, retention)
    landing = Path(landing_dir or config.get("landing_dir"))
    bucket = bucket or config.get("s3_bucket")
    files = list(_processed_files(landing, cutoff_at))
    summary: dict[str, Any] = {
        "cutoff": cutoff_at.isoformat(),
        "dry_run": dry_run,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p, _, _ in files),
    }
    if dry_run or not files:
        log.info(
            "landing: %d processed file(s) older than %s%s",
            len(files),
            cutoff_at.date(),
            " (dry run)" if dry_run else "",
        )
        return {**summary, "keys": [str(p) for p, _, _ in files] if dry_run else []}
    s3 = _s3()
    audit = Audit(run_id or f"archive__{now:%Y%m%dT%H%M%S}", conn_id)
    keys = []
    try:
        for path, feed, day in files:
            try:
                keys.append(_archive_file(s3, bucket, path, feed, day, audit))
            except Exception as exc:
                _record_failure(audit, "raw", None, day, exc)
                raise
    finally:
        audit.close()
    log.info(
        "landing: %d file(s) gzipped to s3://%s/%s/ and removed locally",
        len(keys),
        bucket,
        config.s3_prefix(RAW_PREFIX),
    )
    return {**summary, "keys": keys}


def _archive_file(s3, bucket: str, path: Path, feed: str, day: date, audit: Audit) -> str:
    raw = path.read_bytes()
    digest = _sha256(raw)
    area = config.s3_prefix(RAW_PREFIX)
    key = f"{area}/{feed}/{day:%Y/%m/%d}/{path.name}.gz"
    existing = _head(s3, bucket, key)
    if existing is not None and existing.get("raw-sha256") != digest:
        key = f"{area}/{feed}/{day:%Y/%m/%d}/{path.stem}.{digest[:12]}{path.suffix}.gz"
        existing = _head(s3, bucket, key)
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    if existing is None:
        _put(s3, bucket, key, packed, "application/gzip", **{"raw-sha256": digest})
    back = _get(s3, bucket, key)
    if back is None or _sha256(gzip.decompress(back)) != digest:
        raise ArchiveError(f"s3://{bucket}/{key}: read back differs from {path}")
    audit(
        "raw",
        day=day,
        rows=None,
        s3_key=key,
        detail=f"{path.name}: {len(raw)} bytes → {len(back)} gzipped, verified"
        + ("" if existing is None else " (already on S3)"),
    )
    path.unlink()
    audit("raw_remove", day=day, s3_key=key, detail=f"removed {path}")
    return key


def _head(s3, bucket: str, key: str) -> dict[str, str] | None:
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


# --- restore ------------------------------------------------------------------------------


def archived_days(s3, bucket: str, source: str, first: date, last: date) -> list[date]:
    """Days of ``source`` between first and last (inclusive) that have a manifest on S3."""
    found: set[date] = set()
    month = first.replace(day=1)
    while month <= last:
        prefix = (
            f"{config.s3_prefix(ARCHIVE_PREFIX)}/source={source}/year={month:%Y}/month={month:%m}/"
        )
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/" + MANIFEST):
                    d = int(obj["Key"].split("/day=")[1].split("/")[0])
                    day = month.replace(day=d)
                    if first <= day <= last:
                        found.add(day)
        month = (month + timedelta(days=32)).replace(day=1)
    return sorted(found)


def restore(
    *,
    source: str,
    first_day: date,
    last_day: date | None = None,
    run_id: str | None = None,
    conn_id: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Bring archived days of ``source`` back into its table; restoring twice gives one copy."""
    last_day = last_day or first_day
    if last_day < first_day:
        raise ValueError(f"restore: to day {last_day} is before from day {first_day}")
    table = _table(source)
    bucket = bucket or config.get("s3_bucket")
    run_id = run_id or f"restore__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    s3 = _s3()
    days = archived_days(s3, bucket, source, first_day, last_day)
    audit = Audit(run_id, conn_id)
    restored, present = 0, 0
    try:
        with warehouse.connect(conn_id, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            parent = ".".join(TABLES[source])
            for day in days:
                try:
                    n, total = _restore_day(conn, s3, bucket, source, parent, table, day, audit)
                except Exception as exc:
                    _record_failure(audit, "restore", source, day, exc)
                    raise
                restored += n
                present += total - n
    finally:
        audit.close()
    log.info(
        "restore %s %s..%s: %d archived day(s), %s rows restored, %s already present",
        source,
        first_day,
        last_day,
        len(days),
        f"{restored:,}",
        f"{present:,}",
    )
    return {
        "source": source,
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        "days": [d.isoformat() for d in days],
        "rows_restored": restored,
        "rows_already_present": present,
    }


def _restore_day(
    conn: psycopg.Connection,
    s3,
    bucket: str,
    source: str,
    parent: str,
    table: sql.Identifier,
    day: date,
    audit: Audit,
) -> tuple[int, int]:
    """One day in one transaction: every object verified against the manifest, then upserted
    (existing readings win), and the day sums of the local days it touches recomputed. Returns
    (rows inserted, rows in the archive)."""
    mkey = manifest_key(source, day)
    body = _get(s3, bucket, mkey)
    if body is None:
        raise ArchiveError(f"s3://{bucket}/{mkey}: manifest vanished")
    manifest = json.loads(body)
    if manifest.get("schema_version") not in READABLE_VERSIONS:
        raise ArchiveError(
            f"s3://{bucket}/{mkey}: schema version {manifest.get('schema_version')}, "
            f"this code reads {', '.join(map(str, READABLE_VERSIONS))}"
        )
    start, end = day_bounds(day)
    with conn.transaction():
        conn.execute("SELECT meter.ensure_partitions(%s::regclass, %s, %s)", (parent, start, end))
        conn.execute(sql.SQL(_TEMP_TABLE).format(sql.Identifier("_restore")))
        rows, kwh = 0, Decimal(0)
        per_channel: ChannelStats = {}
        for obj in manifest["objects"]:
            data = _read_back(s3, bucket, obj["key"], obj["bytes"], obj["sha256"])
            arrow, n, s = parquet_stats(data)
            found = channel_stats(arrow)
            # schema version 1 names no channels: its readings are all DEFAULT_CHANNEL
            expected = stats_from_json(obj["channels"]) if "channels" in obj else None
            if n != obj["rows"] or s != Decimal(obj["kwh_sum"]) or expected not in (None, found):
                raise ArchiveError(
                    f"s3://{bucket}/{obj['key']}: {n} rows / {s} kWh ({_stats_text(found)}), "
                    f"manifest says {obj['rows']} / {obj['kwh_sum']}"
                    + (f" ({_stats_text(expected)})" if expected is not None else "")
                )
            with conn.cursor().copy("COPY _restore FROM STDIN (FORMAT csv)") as copy:
                copy.write(table_to_csv(arrow))
            rows += n
            kwh += s
            for c, (cn, cs) in found.items():
                before_n, before_s = per_channel.get(c, (0, Decimal(0)))
                per_channel[c] = (before_n + cn, before_s + cs)
        if (
            rows != manifest["rows"]
            or kwh != Decimal(manifest["kwh_sum"])
            or ("channels" in manifest and stats_from_json(manifest["channels"]) != per_channel)
        ):
            raise ArchiveError(f"s3://{bucket}/{mkey}: objects do not add up to the manifest")
        cur = conn.execute(_query("restore_day", table=table))
        inserted = cur.rowcount
        if inserted:  # the marts' day sums of the local days the restored readings fall on
            aggregation.resum_spans(conn, {source: (start, end - timedelta(minutes=30))})
        audit(
            "restore",
            source=source,
            day=day,
            rows=inserted,
            kwh_sum=kwh,
            s3_key=mkey,
            detail=f"{rows} archived rows verified ({_stats_text(per_channel)}), "
            f"schema version {manifest['schema_version']}, {inserted} inserted, "
            f"{rows - inserted} already present",
            conn=conn,
        )
    return inserted, rows
