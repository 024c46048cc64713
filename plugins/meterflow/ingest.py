"""Loading one landed file into the warehouse: read → cleanse → COPY, exactly once.

One file is one batch and one transaction: its audit.load_batch row, its staged rows
(staging.reading) and its rejects (audit.rejected_row) commit together or not at all, so a
load killed at any point leaves nothing behind and the re-run loads the file once. A file whose
sha256 is already loaded is skipped. Rows are accounted for exactly:
rows read = staged + rejected + duplicates dropped.

Speed: rows go to PostgreSQL with COPY in CSV form written by pyarrow (repeated values —
meter ids, interval starts, the batch's ingested_at — are formatted once and written as
dictionary arrays). Duplicates are found across the whole file in memory on compact int64 keys,
and only when there are any does SQL touch the staged rows again.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue
from typing import TYPE_CHECKING, TypeVar

import psycopg

from meterflow import config, warehouse
from meterflow.models import REJECT_COLUMNS, BatchStatus, LoadResult, Reason

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from meterflow.feeds import Feed

log = logging.getLogger(__name__)

STAGING_COPY = (
    "COPY staging.reading (batch_id, row_no, meter_id, channel, source, interval_start, kwh, "
    "quality, ingested_at) FROM STDIN (FORMAT csv)"
)
REJECT_COPY = (
    "COPY audit.rejected_row (batch_id, row_no, location, meter_id, reason, detail, raw) "
    "FROM STDIN (FORMAT csv)"
)
_COPY_BLOCK = 1 << 20
T = TypeVar("T")
QUALITY_CODE = {"A": 0, "E": 1, "S": 2, "F": 3}
PROCESSED = "processed"
FAILED = "failed"


class FileAlreadyLoaded(Exception):
    """The file's sha256 is already loaded (or being loaded) as another batch."""


class FileChanged(Exception):
    """The file changed while it was loaded (a sender still writing it): nothing is kept, the
    file stays in landing and is loaded whole on a later try."""


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- serialisation for COPY ---------------------------------------------------------------


def _epoch_seconds(series: pd.Series) -> np.ndarray:
    """int64 seconds since the epoch of a tz-aware datetime series."""
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[s]").astype("int64")


def _dict_strings(series: pd.Series) -> tuple[list[str], np.ndarray]:
    """(unique values as strings, int32 indices) for a column with many repeats."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):  # cleansing's: codes already made
        return [str(c) for c in series.cat.categories], series.cat.codes.to_numpy("int32")
    codes, uniques = pd.factorize(series.to_numpy(dtype=object))  # no sort of millions
    return [str(u) for u in uniques], codes.astype("int32")


def _clean_to_csv(clean: pd.DataFrame, batch_id: int, ingested_at: str) -> bytes:
    """The cleansed chunk as COPY CSV for staging.reading, fast (no per-row Python)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = len(clean)
    ts = _epoch_seconds(clean["interval_start"])
    ts_idx, uniq_ts = pd.factorize(ts)
    ts_text = np.datetime_as_string(uniq_ts.astype("datetime64[s]"), unit="s").astype(object) + "Z"
    meters, meter_idx = _dict_strings(clean["meter_id"])
    channels, channel_idx = _dict_strings(clean["channel"])
    sources, source_idx = _dict_strings(clean["source"])
    qualities, quality_idx = _dict_strings(clean["quality"])
    zeros = np.zeros(n, dtype="int32")
    table = pa.table(
        {
            "batch_id": pa.DictionaryArray.from_arrays(zeros, pa.array([str(batch_id)])),
            "row_no": pa.array(clean["row_no"].to_numpy(dtype="int64")),
            "meter_id": pa.DictionaryArray.from_arrays(meter_idx, pa.array(meters)),
            "channel": pa.DictionaryArray.from_arrays(channel_idx, pa.array(channels)),
            "source": pa.DictionaryArray.from_arrays(source_idx, pa.array(sources)),
            "interval_start": pa.DictionaryArray.from_arrays(
                ts_idx.astype("int32"), pa.array(list(ts_text))
            ),
            "kwh": pa.array(np.round(clean["kwh"].to_numpy(dtype="float64"), 6)),
            "quality": pa.DictionaryArray.from_arrays(quality_idx, pa.array(qualities)),
            "ingested_at": pa.DictionaryArray.from_arrays(zeros, pa.array([ingested_at])),
        }
    )
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()


def _rejects_to_csv(rejects: pd.DataFrame, batch_id: int) -> bytes:
    """The rejects as COPY CSV for audit.rejected_row, built like staging's (a file whose every
    row is rejected must not load much slower than one whose rows are staged)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    zeros = np.zeros(len(rejects), dtype="int32")
    table = pa.table(
        {
            "batch_id": pa.DictionaryArray.from_arrays(zeros, pa.array([str(batch_id)])),
            "row_no": pa.array(rejects["row_no"].to_numpy(dtype="int64")),
            **{col: _storable(_text_array(rejects[col])) for col in REJECT_COLUMNS[1:]},
        }
    )
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()


def _text_array(series: pd.Series):
    """A text column as pyarrow strings for COPY; None/NaN become NULL (an unquoted empty
    field). Zero-copy for pyarrow-backed columns, codes and categories for categorical ones."""
    import pandas as pd
    import pyarrow as pa

    values = series.array
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype="int32")
        categories = [str(c) for c in series.cat.categories]
    elif hasattr(values, "__arrow_array__"):
        return pa.array(values, type=pa.string())
    else:
        codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
        codes, categories = codes.astype("int32"), [str(u) for u in uniques]
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, mask=codes < 0), pa.array(categories, type=pa.string())
    )


def _storable(arr):
    """Text PostgreSQL can hold: a NUL byte (raw, or escaped in the raw JSON, where jsonb
    refuses \\u0000) becomes U+FFFD, so a row holding one is rejected like any other instead
    of failing its whole file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def clean(text):
        text = pc.replace_substring(text, "\x00", "\ufffd")
        return pc.replace_substring(text, "\\u0000", "\\ufffd")

    if isinstance(arr, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(arr.indices, clean(arr.dictionary))
    return clean(arr)


def _copy(cur: psycopg.Cursor, statement: str, data: bytes) -> None:
    with cur.copy(statement) as copy:
        for start in range(0, len(data), _COPY_BLOCK):
            copy.write(data[start : start + _COPY_BLOCK])


# --- duplicates -------------------------------------------------------------------------------


@dataclass
class _DuplicateTracker:
    """Finds duplicate (meter, channel, interval) readings across all chunks of one file, and
    whether their copies agree, in memory (``python -m meterflow ingest --dry-run``, which has
    no staged rows to ask; a load uses the leaner _DuplicateKeys).

    Keeps compact int64 arrays per chunk: a key ((meter, channel) code × 2^32 + interval
    number) and a value fingerprint (kWh in micro-kWh and the quality), so a file of millions
    of rows costs a few tens of MB and one sort at the end.
    """

    series_codes: dict[tuple[str, str], int] = field(default_factory=dict)
    keys: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    series: list[tuple[str, str]] = field(default_factory=list)  # (meter, channel) by code

    def add(self, clean: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        if clean.empty:
            return
        m_codes, m_uniques = pd.factorize(clean["meter_id"], sort=False)
        c_codes, c_uniques = pd.factorize(clean["channel"], sort=False)
        pair = m_codes.astype("int64") * len(c_uniques) + c_codes
        codes, pairs = pd.factorize(pair, sort=False)
        mapping = np.empty(len(pairs), dtype="int64")
        for i, p in enumerate(pairs):
            name = (m_uniques[p // len(c_uniques)], c_uniques[p % len(c_uniques)])
            code = self.series_codes.get(name)
            if code is None:
                code = self.series_codes[name] = len(self.series_codes)
                self.series.append(name)
            mapping[i] = code
        slot = _epoch_seconds(clean["interval_start"]) // 1800
        self.keys.append(mapping[codes] * (1 << 32) + slot)
        q_codes, q_uniques = pd.factorize(clean["quality"], sort=False)  # .map on strings: slow
        qual = np.array([QUALITY_CODE[q] for q in q_uniques], dtype="int64")[q_codes]
        micro = np.round(clean["kwh"].to_numpy(dtype="float64") * 1_000_000).astype("int64")
        self.values.append(micro * 4 + qual)

    def resolve(
        self,
    ) -> tuple[list[tuple[str, str, datetime, int]], list[tuple[str, str, datetime, int]]]:
        """(exact, conflicting): duplicate (meter, channel, interval) keys with their row counts.

        Exact: every copy has the same kWh and quality; all but one are dropped. Conflicting:
        the copies disagree; nobody can say which is right, so every copy is rejected.
        """
        import numpy as np

        if not self.keys:
            return [], []
        keys = np.concatenate(self.keys)
        values = np.concatenate(self.values)
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        dup = np.zeros(len(keys), dtype=bool)
        dup[1:] = keys[1:] == keys[:-1]
        if not dup.any():
            return [], []
        starts = np.flatnonzero(~dup)
        group = np.cumsum(~dup) - 1
        sizes = np.diff(np.r_[starts, len(keys)])
        conflicted = np.zeros(len(starts), dtype=bool)
        conflicted[group[dup & (values != values[starts[group]])]] = True
        exact, conflicts = [], []
        for g in np.flatnonzero(sizes > 1):
            key = int(keys[starts[g]])
            item = (
                *self.series[key >> 32],
                datetime.fromtimestamp((key & 0xFFFFFFFF) * 1800, tz=UTC),
                int(sizes[g]),
            )
            (conflicts if conflicted[g] else exact).append(item)
        return exact, conflicts


@dataclass
class _DuplicateKeys:
    """Finds duplicate (meter, channel, interval) keys across all chunks of one file, in a few
    bytes per run of consecutive intervals rather than 16 bytes per row (issue 27: a 1 GB NEM12
    file holds ~100M readings).

    Each chunk's keys ((meter, channel) code × 2^32 + interval number) are sorted and kept as
    runs of consecutive intervals (a NEM12 day is one run of 48, a long CSV's meter one run per
    chunk), plus the keys a chunk repeats. At the end, runs that overlap another run (or hold a
    repeated key) are expanded and counted; all other keys are single. Whether the copies of a
    duplicate agree is decided by _apply_duplicates on the staged rows themselves.
    """

    series_codes: dict[tuple[str, str], int] = field(default_factory=dict)
    series: list[tuple[str, str]] = field(default_factory=list)  # (meter, channel) by code
    starts: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    repeats: list[np.ndarray] = field(default_factory=list)

    def add(self, clean: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        if clean.empty:
            return
        m_codes, m_uniques = pd.factorize(clean["meter_id"], sort=False)
        c_codes, c_uniques = pd.factorize(clean["channel"], sort=False)
        pair = m_codes.astype("int64") * len(c_uniques) + c_codes
        codes, pairs = pd.factorize(pair, sort=False)
        mapping = np.empty(len(pairs), dtype="int64")
        for i, p in enumerate(pairs):
            name = (m_uniques[p // len(c_uniques)], c_uniques[p % len(c_uniques)])
            code = self.series_codes.get(name)
            if code is None:
                code = self.series_codes[name] = len(self.series_codes)
                self.series.append(name)
            mapping[i] = code
        slot = _epoch_seconds(clean["interval_start"]) // 1800
        keys = np.sort(mapping[codes] * (1 << 32) + slot)
        same = keys[1:] == keys[:-1]
        if same.any():
            self.repeats.append(keys[1:][same])
            keys = keys[np.r_[True, ~same]]
        breaks = np.flatnonzero(np.diff(keys) != 1) + 1
        first = np.r_[0, breaks]
        self.starts.append(keys[first])
        self.lengths.append(np.diff(np.r_[first, len(keys)]))

    def resolve(self) -> list[tuple[str, str, datetime, int]]:
        """Duplicate (meter, channel, interval) keys with their row counts."""
        import numpy as np

        if not self.starts:
            return []
        starts = np.concatenate(self.starts)
        ends = starts + np.concatenate(self.lengths)  # exclusive
        repeats = np.concatenate(self.repeats) if self.repeats else np.empty(0, "int64")
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        reach = np.maximum.accumulate(ends)
        involved = np.zeros(len(starts), dtype=bool)
        involved[1:] = starts[1:] < reach[:-1]  # overlaps an earlier run ...
        # ... or a later run overlaps it (runs are sorted: the next one tells)
        overlap_next = np.zeros(len(starts), dtype=bool)
        overlap_next[:-1] = starts[1:] < ends[:-1]
        involved |= overlap_next
        if len(repeats):
            hit = np.searchsorted(starts, repeats, side="right") - 1
            involved[hit[hit >= 0]] = True
        if not involved.any() and not len(repeats):
            return []
        chosen = np.flatnonzero(involved)
        lengths = ends[chosen] - starts[chosen]
        expanded = np.repeat(starts[chosen] - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        expanded += np.arange(lengths.sum())
        keys, counts = np.unique(np.r_[expanded, repeats], return_counts=True)
        out = []
        for key, n in zip(keys[counts > 1].tolist(), counts[counts > 1].tolist(), strict=True):
            out.append(
                (
                    *self.series[key >> 32],
                    datetime.fromtimestamp((key & 0xFFFFFFFF) * 1800, tz=UTC),
                    int(n),
                )
            )
        return out


_CONFLICT_REJECTS = """
INSERT INTO audit.rejected_row (batch_id, row_no, meter_id, reason, detail, raw)
SELECT r.batch_id, r.row_no, r.meter_id, %(reason)s,
       format('meter %%s channel %%s interval %%s has %%s different readings in this file '
              '(rows %%s)', r.meter_id, r.channel,
              to_char(r.interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"'),
              k.n, string_agg(r.row_no::text, ', ') OVER w),
       jsonb_build_object('meter_id', r.meter_id, 'channel', r.channel,
                          'interval_start', r.interval_start, 'kwh', r.kwh, 'quality', r.quality)
  FROM staging.reading r JOIN _dup_keys k USING (meter_id, channel, interval_start)
 WHERE r.batch_id = %(batch_id)s AND k.conflict
WINDOW w AS (PARTITION BY r.meter_id, r.channel, r.interval_start ORDER BY r.row_no
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
"""
_CONFLICT_DELETE = """
DELETE FROM staging.reading r USING _dup_keys k
 WHERE r.batch_id = %(batch_id)s AND k.conflict
   AND r.meter_id = k.meter_id AND r.channel = k.channel AND r.interval_start = k.interval_start
"""
_EXACT_DELETE = """
DELETE FROM staging.reading r USING (
    SELECT s.ctid AS row_ctid,
           row_number() OVER (PARTITION BY s.meter_id, s.channel, s.interval_start
                              ORDER BY s.row_no, s.ctid) AS copy_no
      FROM staging.reading s JOIN _dup_keys k USING (meter_id, channel, interval_start)
     WHERE s.batch_id = %(batch_id)s AND NOT k.conflict) d
 WHERE r.ctid = d.row_ctid AND d.copy_no > 1
"""


_CLASSIFY = """
UPDATE _dup_keys k SET conflict = d.variants > 1
  FROM (SELECT r.meter_id, r.channel, r.interval_start,
               count(DISTINCT (r.kwh, r.quality)) AS variants
          FROM staging.reading r JOIN _dup_keys k USING (meter_id, channel, interval_start)
         WHERE r.batch_id = %(batch_id)s
         GROUP BY 1, 2, 3) d
 WHERE k.meter_id = d.meter_id AND k.channel = d.channel AND k.interval_start = d.interval_start
"""


def _apply_duplicates(cur: psycopg.Cursor, batch_id: int, duplicates: list) -> tuple[int, int]:
    """Drop exact duplicates (keeping the first row) and reject conflicting rows.

    ``duplicates``: (meter, channel, interval start, copies) from _DuplicateKeys. Exact: every
    copy has the same kWh and quality (as staged); all but one are dropped. Conflicting: the
    copies disagree; nobody can say which is right, so every copy is rejected. Returns (rows
    dropped as duplicates, rows rejected as conflicting); each is checked against the counts,
    so a mismatch fails the load instead of mis-accounting.
    """
    if not duplicates:
        return 0, 0
    cur.execute(
        "CREATE TEMP TABLE _dup_keys (meter_id text, channel text, interval_start timestamptz, "
        "n int, conflict bool) ON COMMIT DROP"
    )
    with cur.copy("COPY _dup_keys (meter_id, channel, interval_start, n) FROM STDIN") as copy:
        for meter, channel, start, n in duplicates:
            copy.write_row((meter, channel, start, n))
    params = {"batch_id": batch_id, "reason": Reason.CONFLICTING_DUPLICATE.value}
    cur.execute(_CLASSIFY, params)
    cur.execute(
        "SELECT coalesce(sum(n - 1) FILTER (WHERE NOT conflict), 0), "
        "coalesce(sum(n) FILTER (WHERE conflict), 0), count(*) FILTER (WHERE conflict IS NULL) "
        "FROM _dup_keys"
    )
    expected_drop, expected_conflict, unmatched = cur.fetchone()
    if unmatched:
        raise RuntimeError(f"batch {batch_id}: {unmatched} duplicate keys not found staged")
    cur.execute(_CONFLICT_REJECTS, params)
    cur.execute(_CONFLICT_DELETE, params)
    if cur.rowcount != expected_conflict:
        raise RuntimeError(
            f"batch {batch_id}: {expected_conflict} conflicting rows expected, {cur.rowcount} found"
        )
    cur.execute(_EXACT_DELETE, params)
    if cur.rowcount != expected_drop:
        raise RuntimeError(
            f"batch {batch_id}: {expected_drop} duplicate rows expected, {cur.rowcount} found"
        )
    return int(expected_drop), int(expected_conflict)


# --- the load -------------------------------------------------------------------------------


def load_file(
    path: Path,
    feed: Feed | None = None,
    *,
    conn_id: str | None = None,
    now: datetime | None = None,
    landing_dir: Path | None = None,
    move: bool = True,
    upload_raw: bool = True,
    chunk_rows: int = 100_000,
) -> LoadResult:
    """Load one landed file as one batch; return what happened (never half a file).

    Raises ``readers.UnreadableFile`` (after recording a failed batch and moving the file to
    failed/ with an ``.error.txt``) when the file cannot be loaded for any reason of its own;
    a fault of the database or S3 (:func:`_transient`) is raised unchanged, nothing recorded,
    the file left in landing for the retry.
    """
    from meterflow import cleansing, feeds, readers

    path = Path(path)
    landing = Path(landing_dir or config.get("landing_dir"))
    if feed is None:
        feed = feeds.feed_for_path(path, landing)
        if feed is None:
            raise readers.UnreadableFile(
                f"{path}: no feed in feeds.yaml takes this file (folder and pattern)"
            )
    if feed.name == "registry":  # meter_id, site, region, owner → meter.meter, no readings
        from meterflow import registry

        return registry.load_file(path, feed, conn_id=conn_id, landing_dir=landing, move=move)
    from meterflow import lifecycle

    if lifecycle.handles(feed):  # exclusion lists and approval files → meter lifecycle
        return lifecycle.load_file(path, feed, conn_id=conn_id, landing_dir=landing, move=move)
    now = now or datetime.now(UTC)
    result = LoadResult(file=path.name, feed=feed.name)
    signature = _signature(path)
    digest = sha256_file(path)
    size = signature[0]

    with warehouse.connect(conn_id) as conn, conn.cursor() as cur:
        try:
            batch_id, ingested_at = _open_batch(cur, feed, path, digest, size)
        except FileAlreadyLoaded as exc:
            conn.rollback()
            result.skipped_reason = str(exc)
            log.info("%s", result.summary())
            if move:
                _move(path, landing, PROCESSED, feed.name)
            return result
        result.batch_id = batch_id
        cleanser = cleansing.Cleanser(
            feed, now=now, max_kwh=config.get("max_kwh"), meter_limits=meter_limits(cur)
        )
        tracker = _DuplicateKeys()
        reasons: Counter[str] = Counter()
        try:
            chunks = _prepared(path, feed, cleanser, batch_id, ingested_at, chunk_rows)
            for n_raw, clean, clean_csv, rejects, rejects_csv in _prefetch(chunks):
                # the next chunk is read and cleansed in a thread while this one is COPYed
                result.rows_read += n_raw
                if len(clean):
                    _copy(cur, STAGING_COPY, clean_csv)
                    tracker.add(clean)
                if len(rejects):
                    _copy(cur, REJECT_COPY, rejects_csv)
                    reasons.update({k: v for k, v in rejects["reason"].value_counts().items() if v})
            dropped, conflicting = _apply_duplicates(cur, batch_id, tracker.resolve())
            if conflicting:
                reasons[Reason.CONFLICTING_DUPLICATE.value] += conflicting
            result.rows_duplicate = dropped
            result.rows_rejected = sum(reasons.values())
            result.rows_staged = result.rows_read - result.rows_rejected - result.rows_duplicate
            result.reasons = dict(reasons)
            if _signature(path) != signature:
                raise FileChanged(f"{path.name}: changed while it was being loaded; retried later")
            raw_key = None
            if upload_raw:
                raw_key = _upload_raw(path, feed.name, now, digest)
            cur.execute(
                """UPDATE audit.load_batch
                      SET status = %s, rows_read = %s, rows_staged = %s, rows_rejected = %s,
                          rows_duplicate = %s, raw_s3_key = %s, finished_at = clock_timestamp()
                    WHERE batch_id = %s""",
                (
                    BatchStatus.STAGED.value,
                    result.rows_read,
                    result.rows_staged,
                    result.rows_rejected,
                    result.rows_duplicate,
                    raw_key,
                    batch_id,
                ),
            )
            conn.commit()
        except Exception as exc:
            # The one place a load ends in failure. A service fault (database, S3) is raised
            # as it is for the task's retries; anything else is the file's fault and the file
            # fails now, whatever the exception: retrying would only fail it again, and a file
            # left in landing is retried for ever.
            conn.rollback()
            if _transient(exc):
                raise
            error = (
                str(exc)
                if isinstance(exc, readers.UnreadableFile)
                else f"{path.name}: not loaded: {type(exc).__name__}: {exc}"
            )
            _record_failure(cur, feed, path, digest, size, error)
            conn.commit()
            if move:
                target = _move(path, landing, FAILED, feed.name)
                target.with_name(target.name + ".error.txt").write_text(error + "\n")
            log.error("%s", error)
            _alert_failed(feed.name, path.name, digest, error)
            if isinstance(exc, readers.UnreadableFile):
                raise
            raise readers.UnreadableFile(error) from exc
    result.status = BatchStatus.STAGED.value
    log.info("%s; reasons %s", result.summary(), dict(reasons) or "none")
    if move:
        _move(path, landing, PROCESSED, feed.name)
    return result


def _prepared(path, feed, cleanser, batch_id: int, ingested_at: str, chunk_rows: int):
    """(rows read, clean frame, its COPY bytes, rejects frame, their COPY bytes) per chunk,
    then the rows the cleanser held back to the end of the file (``finish``), with 0 read."""
    from meterflow import readers

    rows_in = rows_out = 0

    def prepare(n_raw: int, clean, rejects):
        nonlocal rows_in, rows_out
        rows_in += n_raw
        rows_out += len(clean) + len(rejects)
        if rows_out + cleanser.pending != rows_in:
            raise RuntimeError(
                f"{path.name}: cleansing lost rows ({rows_in} in, {rows_out} out, "
                f"{cleanser.pending} held)"
            )
        clean_csv = _clean_to_csv(clean, batch_id, ingested_at) if len(clean) else b""
        rejects_csv = _rejects_to_csv(rejects, batch_id) if len(rejects) else b""
        return n_raw, clean, clean_csv, rejects, rejects_csv

    for raw in readers.read(path, feed, chunk_rows=chunk_rows):
        yield prepare(len(raw), *cleanser.cleanse(raw))
    yield prepare(0, *cleanser.finish())


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield from ``items`` while a thread computes up to ``depth`` items ahead.

    Reading and cleansing (Python, pandas) then overlap the COPY (PostgreSQL, another core).
    An exception in the thread is raised here, at the item where it happened."""
    done = object()
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put((item, None))
            queue.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((done, exc))

    thread = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                thread.join(0.05)


def _open_batch(
    cur: psycopg.Cursor, feed: Feed, path: Path, digest: str, size: int
) -> tuple[int, str]:
    """Insert the batch row (status loading); FileAlreadyLoaded when the sha256 is taken."""
    cur.execute(
        "SELECT batch_id, status FROM audit.load_batch WHERE sha256 = %s AND status <> 'failed'",
        (digest,),
    )
    seen = cur.fetchone()
    if seen:
        raise FileAlreadyLoaded(f"already loaded as batch {seen[0]} ({seen[1]}), same sha256")
    try:
        cur.execute(
            """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes)
               VALUES (%s, %s, %s, %s, %s)
               RETURNING batch_id, to_char(started_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
            (feed.name, path.name, str(path), digest, size),
        )
    except psycopg.errors.UniqueViolation as exc:  # a concurrent load of the same bytes
        raise FileAlreadyLoaded("being loaded by another task, same sha256") from exc
    batch_id, ingested_at = cur.fetchone()
    return batch_id, ingested_at


def meter_limits(cur: psycopg.Cursor) -> dict[str, float]:
    """Meters with their own limit per 30 minutes (a site's capacity in meter.meter)."""
    cur.execute("SELECT meter_id, capacity_kwh FROM meter.meter WHERE capacity_kwh IS NOT NULL")
    return {meter: float(limit) for meter, limit in cur.fetchall()}


def _alert_failed(feed_name: str, name: str, digest: str, error: str) -> None:
    """The file's incident (once per file), sent with its DAG run's other alerts."""
    from meterflow import alerts

    dag_id, run_id = alerts.current_run()
    link = alerts.task_log_url(dag_id, run_id, "load") if dag_id and run_id else None
    alerts.record(
        f"file:{feed_name}/{name}:{digest[:12]}",
        "file_failed",
        f"{feed_name}/{name} moved to failed/: {error}",
        link=link,
    )


def _transient(exc: BaseException) -> bool:
    """A fault of a service rather than of the file (the database or S3 unreachable, a
    timeout, a full disk on the server), or a file still being written: the same file may
    load on a retry."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, FileChanged):
        return True
    database = (psycopg.OperationalError, psycopg.InterfaceError)
    network = (ConnectionError, TimeoutError, BotoCoreError, ClientError, S3UploadFailedError)
    return isinstance(exc, database + network)


def _record_failure(
    cur: psycopg.Cursor, feed: Feed, path: Path, digest: str, size: int, error: str
) -> None:
    cur.execute(
        """INSERT INTO audit.load_batch
               (feed, file_name, file_path, sha256, size_bytes, status, error, finished_at)
           VALUES (%s, %s, %s, %s, %s, 'failed', %s, clock_timestamp())""",
        (feed.name, path.name, str(path), digest, size, error),
    )


def _upload_raw(path: Path, feed_name: str, now: datetime, digest: str) -> str:
    """Put the file's raw bytes on S3 at raw/<feed>/<yyyy>/<mm>/<dd>/<sha256[:16]>/<file>;
    return the key. The hash keeps two different files of one name landed on one day apart."""
    key = f"{config.s3_prefix('raw')}/{feed_name}/{now:%Y/%m/%d}/{digest[:16]}/{path.name}"
    _s3_client(config.get("aws_conn_id")).upload_file(str(path), config.get("s3_bucket"), key)
    return key


@functools.cache
def _s3_client(conn_id: str):
    """One boto3 client per worker process and connection: making one loads botocore's
    service model, ~0.8 s, which was a third of loading a 300k-row file."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def _move(path: Path, landing: Path, where: str, feed_name: str) -> Path:
    """Move a handled file to landing/<where>/<feed>/, never overwriting an earlier one."""
    target_dir = landing / where / feed_name
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    return target


def shelve_failed(landing_dir: Path | None = None, older_than_days: int | None = None) -> int:
    """Move files that failed more than ``failed_retention_days`` ago (with their
    ``.error.txt``) from landing/failed/ to S3 ``failed/<feed>/<yyyy>/<mm>/<dd>/<sha>-<name>``,
    so the landing disk does not fill while nothing is lost; return how many files moved."""
    landing = Path(landing_dir or config.get("landing_dir"))
    days = config.get("failed_retention_days") if older_than_days is None else older_than_days
    cutoff = time.time() - days * 86400
    client = _s3_client(config.get("aws_conn_id"))
    bucket = config.get("s3_bucket")
    moved = 0
    for path in sorted((landing / FAILED).glob("*/*")):
        if not path.is_file() or path.name.endswith(".error.txt"):
            continue
        mtime = path.stat().st_mtime
        if mtime >= cutoff:
            continue
        day = datetime.fromtimestamp(mtime, UTC)
        key = (
            f"{config.s3_prefix(FAILED)}/{path.parent.name}/{day:%Y/%m/%d}/"
            f"{sha256_file(path)[:12]}-{path.name}"
        )
        error = path.with_name(path.name + ".error.txt")
        client.upload_file(str(path), bucket, key)
        if error.exists():
            client.upload_file(str(error), bucket, key + ".error.txt")
            error.unlink()
        path.unlink()
        moved += 1
        log.info("%s: failed %s ago; moved to s3://%s/%s", path.name, days, bucket, key)
    return moved


def landed_files(landing_dir: Path | None = None, limit: int | None = None) -> list[Path]:
    """Files waiting in the feed folders (not processed/, failed/, hidden or partial files),
    settled, oldest first, at most ``limit`` (setting ``max_files_per_run``) so a backlog
    drains over several runs instead of exceeding Airflow's limit on mapped tasks.

    A file is taken once complete: unchanged in size and mtime for ``settle_seconds`` (a file
    younger than that is watched until it is that old, and left for the next run if it is
    still growing), or renamed into the feed folder from a name no feed pattern takes (a
    sender writing ``.name`` or ``name.part`` and renaming it when done). A file no feed takes
    is named in the log (it stays where it is)."""
    from meterflow import feeds

    landing = Path(landing_dir or config.get("landing_dir"))
    limit = config.get("max_files_per_run") if limit is None else limit
    settle = float(config.get("settle_seconds"))
    known = feeds.load_feeds()
    found: dict[Path, tuple[int, int]] = {}
    for path in landing.glob("*/*"):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(".error.txt"):
            continue
        if feeds.feed_for_path(path, landing, known) is None:
            log.warning("%s: no feed in feeds.yaml takes this file; it is not loaded", path)
            continue
        try:
            found[path] = _signature(path)
        except FileNotFoundError:  # taken by another run since the listing
            continue
    found = _settled(found, settle)
    ordered = sorted(found, key=lambda p: (found[p][1], str(p)))
    if len(ordered) > limit:
        log.info("%d files waiting; this run takes the oldest %d", len(ordered), limit)
    return ordered[:limit]


def _settled(found: dict[Path, tuple[int, int]], settle: float) -> dict[Path, tuple[int, int]]:
    """The files unchanged for ``settle`` seconds; waits (at most that long) for young ones."""
    youngest = max((mtime for _, mtime in found.values()), default=0) / 1e9
    wait = min(settle, youngest + settle - time.time())
    if wait <= 0:
        return found
    time.sleep(wait)
    out = {}
    for path, signature in found.items():
        try:
            now = _signature(path)
        except FileNotFoundError:
            continue
        if now == signature:
            out[path] = signature
        else:
            log.info("%s: still being written; left for the next run", path)
    return out
