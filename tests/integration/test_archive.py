"""Archive to S3 and restore, against the real PostgreSQL and S3 endpoint, with a fixed now.

now = 2025-03-10 12:00 UTC, retention 30 days → cutoff 2025-02-08 00:00 UTC: January is a
whole month past the cutoff (its partition is dropped), 1–7 February are deleted day by day,
8 February onwards stays.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from meterflow import archive

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2025, 2, 8, tzinfo=UTC)
FIRST = datetime(2025, 1, 30, tzinfo=UTC)  # readings from here ...
LAST = datetime(2025, 2, 10, tzinfo=UTC)  # ... to here (exclusive)
KWH = [Decimal("0.25"), Decimal("1.123456"), Decimal("3"), Decimal("0.5")]
COLUMNS = "meter_id, interval_start, kwh, quality, batch_id, ingested_at"


def _readings(source: str, meters: int = 2) -> list[tuple]:
    rows = []
    ingested = datetime(2025, 2, 11, 6, 0, 0, 123456, tzinfo=UTC)
    for m in range(meters):
        t, i = FIRST, 0
        while t < LAST:
            quality = "E" if i % 17 == 0 else "A"
            rows.append((f"SMR8913{m}{source}", t, KWH[(i + m) % 4], quality, 7 + m, ingested))
            t += timedelta(minutes=30)
            i += 1
    return rows


def _insert(db, source: str, rows: list[tuple]) -> None:
    table = f"meter.readings_{source.lower()}"
    db.execute(
        "SELECT meter.ensure_partitions(%s::regclass, %s, %s)",
        (table, min(r[1] for r in rows), max(r[1] for r in rows) + timedelta(minutes=30)),
    )
    with db.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", rows)


def _table(db, source: str) -> list[tuple]:
    return db.execute(
        f"SELECT {COLUMNS} FROM meter.readings_{source.lower()} ORDER BY meter_id, interval_start"
    ).fetchall()


def _days(rows: list[tuple]) -> dict[date, tuple[int, Decimal]]:
    out: dict[date, tuple[int, Decimal]] = {}
    for r in rows:
        n, s = out.get(r[1].date(), (0, Decimal(0)))
        out[r[1].date()] = (n + 1, s + r[2])
    return out


def _keys(s3_client, bucket: str, prefix: str = "") -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _exists(db, name: str) -> bool:
    return db.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


@pytest.fixture
def loaded(db, bucket):
    """Readings of sources A and B from 30 January to 9 February; returns them."""
    data = {s: _readings(s) for s in ("A", "B")}
    for source, rows in data.items():
        _insert(db, source, rows)
    return data


def test_archiving_moves_exactly_the_rows_older_than_the_cutoff(db, loaded):
    summary = archive.archive_readings(now=NOW, retention_days=30, run_id="t1")

    assert summary["cutoff"] == CUTOFF.isoformat()
    for source, rows in loaded.items():
        assert _table(db, source) == [r for r in rows if r[1] >= CUTOFF]
        old = [r for r in rows if r[1] < CUTOFF]
        assert summary["sources"][source]["rows_removed"] == len(old)
        assert Decimal(summary["sources"][source]["kwh_removed"]) == sum(r[2] for r in old)
    # January is wholly past the cutoff: its partition was dropped, not emptied row by row.
    assert not _exists(db, "meter.readings_a_202501")
    assert _exists(db, "meter.readings_a_202502")
    assert summary["sources"]["A"]["partitions_dropped"] == ["meter.readings_a_202501"]
    assert summary["sources"]["C"]["rows_removed"] == 0


def test_objects_and_manifests_on_s3_match_the_archived_rows(db, loaded, s3_client, bucket):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    archive.archive_readings(now=NOW, retention_days=30, run_id="t2")

    for source, rows in loaded.items():
        expected = {d: v for d, v in _days(rows).items() if d < CUTOFF.date()}
        manifests = _keys(s3_client, bucket, f"archive/source={source}/")
        manifests = [k for k in manifests if k.endswith("manifest.json")]
        assert len(manifests) == len(expected) == 9  # 30 Jan .. 7 Feb
        for day, (n, kwh) in expected.items():
            prefix = f"archive/source={source}/year={day:%Y}/month={day:%m}/day={day:%d}/"
            body = s3_client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"]
            manifest = json.loads(body.read())
            assert manifest["schema_version"] == archive.SCHEMA_VERSION
            assert (manifest["rows"], Decimal(manifest["kwh_sum"])) == (n, kwh)
            assert manifest["min_interval_start"] == f"{day}T00:00:00+00:00"
            assert manifest["max_interval_start"] == f"{day}T23:30:00+00:00"
            [obj] = manifest["objects"]
            assert obj["key"].startswith(prefix) and obj["key"].endswith(".parquet")
            data = s3_client.get_object(Bucket=bucket, Key=obj["key"])["Body"].read()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (obj["bytes"], obj["sha256"])
            parquet = pq.ParquetFile(io.BytesIO(data))
            assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
            table = parquet.read()
            assert (table.num_rows, pc.sum(table["kwh"]).as_py()) == (n, kwh)


def test_restore_of_the_archive_gives_back_the_original_rows_value_for_value(db, loaded):
    before = {s: _table(db, s) for s in loaded}
    archive.archive_readings(now=NOW, retention_days=30, run_id="t3")
    assert all(len(_table(db, s)) < len(before[s]) for s in loaded)

    for source in loaded:
        first = archive.restore(
            source=source, first_day=date(2025, 1, 1), last_day=date(2025, 2, 28), run_id="r1"
        )
        assert first["rows_restored"] == len(before[source]) - 2 * 48 * 2  # 8, 9 Feb stayed
        assert _table(db, source) == before[source]
        again = archive.restore(
            source=source, first_day=date(2025, 1, 1), last_day=date(2025, 2, 28), run_id="r2"
        )
        assert again["rows_restored"] == 0
        assert again["rows_already_present"] == first["rows_restored"]
        assert _table(db, source) == before[source]  # restoring twice gives one copy

    restored = db.execute(
        "SELECT run_id, source, sum(rows) FROM audit.archive_run WHERE step = 'restore' "
        "AND status = 'ok' GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert [(r, s) for r, s, _ in restored] == [("r1", "A"), ("r1", "B"), ("r2", "A"), ("r2", "B")]
    assert [n for r, _, n in restored if r == "r2"] == [0, 0]


def test_restore_of_a_range_brings_back_only_those_days(db, loaded):
    archive.archive_readings(now=NOW, retention_days=30, run_id="t4")
    out = archive.restore(source="A", first_day=date(2025, 2, 2), last_day=date(2025, 2, 3))
    assert out["days"] == ["2025-02-02", "2025-02-03"]
    days = {r[1].date() for r in _table(db, "A")}
    assert days == {date(2025, 2, 2), date(2025, 2, 3), date(2025, 2, 8), date(2025, 2, 9)}


def test_restore_recomputes_the_marts_day_sums_of_the_restored_days(db, loaded):
    archive.archive_readings(now=NOW, retention_days=30, run_id="t5")
    archive.restore(source="A", first_day=date(2025, 2, 2), last_day=date(2025, 2, 2))
    sums = db.execute(
        "SELECT local_date, meter_id, kwh, intervals FROM mart.meter_day ORDER BY 1, 2"
    ).fetchall()
    # February is GMT: the restored UTC day is exactly the local day 2 February, and no other
    # day was summed.
    day = [r for r in loaded["A"] if r[1].date() == date(2025, 2, 2)]
    assert sums == [
        (date(2025, 2, 2), meter, sum(r[2] for r in day if r[0] == meter), 48)
        for meter in ("SMR89130A", "SMR89131A")
    ]


def test_dry_run_changes_nothing_and_reports_what_it_would_move(db, loaded, s3_client, bucket):
    before = {s: _table(db, s) for s in loaded}

    summary = archive.archive_readings(now=NOW, retention_days=30, dry_run=True)

    a = summary["sources"]["A"]
    old = [r for r in loaded["A"] if r[1] < CUTOFF]
    assert (a["days"], a["rows"], Decimal(a["kwh_sum"])) == (9, len(old), sum(r[2] for r in old))
    assert (a["first_day"], a["last_day"]) == ("2025-01-30", "2025-02-07")
    assert a["partitions_to_drop"] == ["meter.readings_a_202501"]
    assert {s: _table(db, s) for s in loaded} == before
    assert _keys(s3_client, bucket) == []
    assert db.execute("SELECT count(*) FROM audit.archive_run").fetchone()[0] == 0


def test_every_step_is_recorded_in_the_audit(db, loaded):
    archive.archive_readings(now=NOW, retention_days=30, run_id="t5", sources=["A"])
    steps = db.execute(
        "SELECT step, count(*) FROM audit.archive_run WHERE run_id = 't5' AND status = 'ok' "
        "GROUP BY step"
    ).fetchall()
    assert dict(steps) == {
        "export": 9,
        "upload": 9,
        "verify": 9,
        "manifest": 9,
        "delete": 9,
        "drop_partition": 1,
    }


def test_marts_keep_the_aggregates_of_archived_days(db, loaded):
    db.execute(
        "INSERT INTO mart.consumption_daily VALUES ('A', 'SMR89130A', '2025-01-31', 60.5, 48, "
        "48, 1)"
    )
    archive.archive_readings(now=NOW, retention_days=30)
    assert db.execute("SELECT kwh FROM mart.consumption_daily").fetchall() == [(Decimal("60.5"),)]


def test_a_day_that_changes_after_its_export_stays_until_the_next_run(db, loaded, monkeypatch):
    """A late reading lands in January between export and delete: January's partition is not
    dropped, that day stays, the other days go; the next run merges the day into its archive."""
    real = archive.archive_day
    late = (
        "SMR89199A",
        datetime(2025, 1, 31, 5, 0, tzinfo=UTC),
        Decimal("9.75"),
        "A",
        99,
        datetime(2025, 3, 10, tzinfo=UTC),
    )

    def archive_then_late_reading(conn, s3, bucket, source, day, audit):
        done = real(conn, s3, bucket, source, day, audit)
        if source == "A" and day == date(2025, 2, 7):  # the last old day: export is over
            _insert(db, "A", [late])
        return done

    monkeypatch.setattr(archive, "archive_day", archive_then_late_reading)
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="t6")

    kept = {r[1].date() for r in _table(db, "A") if r[1] < CUTOFF}
    assert kept == {date(2025, 1, 31)}
    assert _exists(db, "meter.readings_a_202501")
    assert db.execute(
        "SELECT status FROM audit.archive_run WHERE run_id = 't6' AND day = '2025-01-31' "
        "AND step = 'delete'"
    ).fetchall() == [("skipped",)]

    monkeypatch.setattr(archive, "archive_day", real)
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="t7")
    assert all(r[1] >= CUTOFF for r in _table(db, "A"))
    archive.restore(source="A", first_day=date(2025, 1, 31))
    jan31 = [r for r in _table(db, "A") if r[1].date() == date(2025, 1, 31)]
    assert len(jan31) == 2 * 48 + 1 and tuple(late) in jan31


def test_a_better_late_reading_replaces_the_archived_one(db, loaded):
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"])
    old = next(r for r in loaded["A"] if r[3] == "E" and r[1] < CUTOFF)
    better = (old[0], old[1], Decimal("2.5"), "A", 123, NOW)
    worse = next(r for r in loaded["A"] if r[3] == "A" and r[1].date() == old[1].date())
    _insert(db, "A", [better, (worse[0], worse[1], Decimal("7"), "E", 124, NOW)])

    archive.archive_readings(now=NOW, retention_days=30, sources=["A"])
    archive.restore(source="A", first_day=old[1].date())
    rows = {(r[0], r[1]): r for r in _table(db, "A")}
    assert rows[(old[0], old[1])] == better  # actual beats the archived estimate
    assert rows[(worse[0], worse[1])] == worse  # an estimate does not beat an archived actual


def _promote_correction(db, old: tuple, kwh: Decimal) -> int:
    """A later batch (id above the fixture's) with an actual reading for ``old``'s interval,
    staged, validated and promoted the way meter_segregate does it; returns the batch id."""
    from meterflow import segregate

    db.execute("SELECT setval(pg_get_serial_sequence('audit.load_batch', 'batch_id'), 100)")
    (batch_id,) = db.execute(
        """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,
                                         rows_read, rows_staged)
           VALUES ('spreadsheets', 'fix.csv', '/landing/fix.csv', repeat('c', 64), 0,
                   'validated', 1, 1)
           RETURNING batch_id"""
    ).fetchone()
    db.execute(
        """INSERT INTO staging.reading (batch_id, row_no, meter_id, source, interval_start, kwh,
                                        quality, ingested_at)
           VALUES (%s, 2, %s, 'A', %s, %s, 'A', %s)""",
        (batch_id, old[0], old[1], kwh, NOW),
    )
    assert segregate.promote_batch(db, batch_id).promoted == 1
    return batch_id


def test_a_correction_promoted_after_an_equal_quality_archived_value_survives_archive_and_restore(
    db, loaded
):
    """2 February is archived holding an actual reading; a later batch corrects it with another
    actual value (promotion: same quality, the newer batch wins). The next archive run merges
    the correction into the day's archive instead of the old value, and restore brings it back."""
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="first")
    old = next(r for r in loaded["A"] if r[3] == "A" and r[1].date() == date(2025, 2, 2))
    batch_id = _promote_correction(db, old, Decimal("4.2"))

    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="second")
    assert all(r[1] >= CUTOFF for r in _table(db, "A"))
    archive.restore(source="A", first_day=date(2025, 2, 2))

    day = {(r[0], r[1]): r for r in _table(db, "A") if r[1].date() == date(2025, 2, 2)}
    assert day[(old[0], old[1])] == (old[0], old[1], Decimal("4.2"), "A", batch_id, NOW)
    expected = {(r[0], r[1]): r for r in loaded["A"] if r[1].date() == date(2025, 2, 2)}
    expected[(old[0], old[1])] = day[(old[0], old[1])]
    assert day == expected


def test_a_merge_that_would_drop_a_warehouse_reading_fails_the_check_and_deletes_nothing(
    db, loaded, monkeypatch
):
    """The removal compares the object read back from S3 with the rows it deletes: a merge
    that kept the archived value over a newer correction (the old tie rule, put back here)
    stops the run, and the correction stays in the warehouse."""
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"])
    old = next(r for r in loaded["A"] if r[3] == "A" and r[1].date() == date(2025, 2, 2))
    _promote_correction(db, old, Decimal("4.2"))
    real_query = archive._query

    def archived_wins_ties(name, **identifiers):
        query = real_query(name, **identifiers)
        if name != "export_merged_day":
            return query
        text = query.as_string(None).replace("batch_id DESC, archived", "archived DESC")
        return archive.sql.SQL(text)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "_query", archived_wins_ties)
    with pytest.raises(archive.ArchiveError, match="not in the object read back from S3"):
        archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="lossy")
    kept = [r for r in _table(db, "A") if r[1] < CUTOFF]
    assert [r[2] for r in kept] == [Decimal("4.2")]


def test_an_object_that_reads_back_different_stops_the_run_before_any_delete(
    db, loaded, s3_client, bucket, monkeypatch
):
    """Another writer replaces 2 February's Parquet on S3 right after the upload: the read-back
    does not match, the run fails naming the object, nothing leaves the warehouse and the day
    gets no manifest."""
    before = {s: _table(db, s) for s in loaded}
    real_put = archive._put

    def put_then_overwrite(s3, bucket_, key, data, content_type, **meta):
        real_put(s3, bucket_, key, data, content_type, **meta)
        if "/day=02/" in key and key.endswith(".parquet"):
            s3_client.put_object(Bucket=bucket_, Key=key, Body=data[:-1] + b"\0")

    monkeypatch.setattr(archive, "_put", put_then_overwrite)
    with pytest.raises(archive.ArchiveError, match=r"day=02/.*read back"):
        archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="bad")

    assert {s: _table(db, s) for s in loaded} == before
    assert _keys(s3_client, bucket, "archive/source=A/year=2025/month=02/day=02/manifest") == []
    assert db.execute(
        "SELECT step, status, day FROM audit.archive_run WHERE run_id = 'bad' AND status <> 'ok'"
    ).fetchall() == [("archive", "failed", date(2025, 2, 2))]


# --- S3 endpoint stopped mid-run ---------------------------------------------------------


class Endpoint:
    """A TCP relay in front of the local S3 server that can be stopped and started again, so
    the archive sees a real endpoint go away (connection refused) and come back with its data."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if self._server is not server:  # accepted while stopping: the endpoint is gone
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def endpoint(monkeypatch):
    relay = Endpoint(int(os.environ.get("MF_S3_PORT", "5001")))
    relay.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "meterflow-local",
                "password": "meterflow-local",
                "extra": {
                    "endpoint_url": f"http://127.0.0.1:{relay.port}",
                    "region_name": "eu-west-2",
                    "config_kwargs": {
                        "retries": {"mode": "standard", "max_attempts": 1},
                        "connect_timeout": 2,
                        "read_timeout": 10,
                    },
                },
            }
        ),
    )
    yield relay
    relay.stop()


def test_s3_stopped_mid_run_deletes_nothing_and_the_retry_completes(
    db, loaded, s3_client, bucket, endpoint, monkeypatch
):
    before = {s: _table(db, s) for s in loaded}
    real_put = archive._put
    puts = []

    def put_then_stop(s3, bucket_, key, data, content_type, **meta):
        real_put(s3, bucket_, key, data, content_type, **meta)
        puts.append(key)
        if len(puts) == 5:  # day 1 and 2 archived, day 3 uploaded: the endpoint goes away
            endpoint.stop()

    monkeypatch.setattr(archive, "_put", put_then_stop)
    with pytest.raises(Exception, match=r"(?i)connect"):
        archive.archive_readings(now=NOW, retention_days=30, run_id="down")

    assert {s: _table(db, s) for s in loaded} == before  # nothing deleted
    assert (
        db.execute(
            "SELECT count(*) FROM audit.archive_run WHERE run_id = 'down' AND status = 'failed'"
        ).fetchone()[0]
        == 1
    )
    assert (
        db.execute("SELECT count(*) FROM audit.archive_run WHERE step = 'delete'").fetchone()[0]
        == 0
    )

    endpoint.start()
    monkeypatch.setattr(archive, "_put", real_put)
    archive.archive_readings(now=NOW, retention_days=30, run_id="retry")

    for source, rows in loaded.items():
        assert _table(db, source) == [r for r in rows if r[1] >= CUTOFF]
        keys = _keys(s3_client, bucket, f"archive/source={source}/")
        assert len(keys) == 2 * 9  # one Parquet + one manifest per day: no duplicates
        archive.restore(source=source, first_day=date(2025, 1, 1), last_day=date(2025, 2, 28))
        assert _table(db, source) == rows


def test_an_upload_left_by_an_interrupted_run_is_removed_once_the_day_is_archived(
    db, loaded, s3_client, bucket, endpoint, monkeypatch
):
    """The endpoint goes away after 1 February's Parquet is uploaded but before its manifest;
    a late reading then changes that day, so the retry writes a different object: the day ends
    with exactly one Parquet (the one its manifest names) and the late reading is in it."""
    real_put = archive._put
    puts = []

    def put_then_stop(s3, bucket_, key, data, content_type, **meta):
        real_put(s3, bucket_, key, data, content_type, **meta)
        puts.append(key)
        if len(puts) == 5:  # 30, 31 January archived; 1 February's Parquet uploaded
            endpoint.stop()

    monkeypatch.setattr(archive, "_put", put_then_stop)
    with pytest.raises(Exception, match=r"(?i)connect"):
        archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="down")
    left = puts[-1]
    assert "/day=01/" in left and left.endswith(".parquet")
    late = ("SMR89199A", datetime(2025, 2, 1, 5, 0, tzinfo=UTC), Decimal("9.75"), "A", 99, NOW)
    _insert(db, "A", [late])

    endpoint.start()
    monkeypatch.setattr(archive, "_put", real_put)
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="retry")

    prefix = "archive/source=A/year=2025/month=02/day=01/"
    body = s3_client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read()
    manifest = json.loads(body)
    [obj] = manifest["objects"]
    assert obj["key"] != left
    assert _keys(s3_client, bucket, prefix) == sorted([obj["key"], prefix + "manifest.json"])
    assert manifest["rows"] == 2 * 48 + 1
    archive.restore(source="A", first_day=date(2025, 2, 1))
    assert tuple(late) in _table(db, "A")


# --- landing files ----------------------------------------------------------------------


def test_old_processed_landing_files_are_gzipped_to_s3_verified_and_removed(
    db, landing, s3_client, bucket
):
    feed = landing / "processed" / "spreadsheets"
    feed.mkdir(parents=True)
    old, recent = feed / "old.csv", feed / "recent.csv"
    old.write_text("meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:00,0.25\n")
    recent.write_text("meter_id,timestamp,reading_kWh\n")
    jan = datetime(2025, 1, 15, 9, 0, tzinfo=UTC).timestamp()
    os.utime(old, (jan, jan))
    mar = datetime(2025, 3, 9, tzinfo=UTC).timestamp()
    os.utime(recent, (mar, mar))
    content = old.read_bytes()

    dry = archive.archive_landing(now=NOW, retention_days=30, dry_run=True)
    assert (dry["files"], dry["keys"]) == (1, [str(old)]) and old.exists()

    out = archive.archive_landing(now=NOW, retention_days=30, run_id="raw")
    key = "raw/spreadsheets/2025/01/15/old.csv.gz"
    assert out["keys"] == [key]
    assert gzip.decompress(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()) == content
    assert not old.exists() and recent.exists()
    assert [
        s
        for (s,) in db.execute(
            "SELECT step FROM audit.archive_run WHERE run_id = 'raw' ORDER BY id"
        )
    ] == ["raw", "raw_remove"]


# --- channels (schema version 2) and archives of schema version 1 ---------------------------

CH_COLUMNS = "meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at"


def _solar(meter: str = "SMR89150A") -> list[tuple]:
    """A rooftop-solar meter on 5-6 February: import E1, export B1 and reactive Q1 (kVArh) on
    the same intervals, with different values (B1 often equal to E1, as a real file has)."""
    rows = []
    ingested = datetime(2025, 2, 11, 6, 0, 0, 123456, tzinfo=UTC)
    t, i = datetime(2025, 2, 5, tzinfo=UTC), 0
    while t < datetime(2025, 2, 7, tzinfo=UTC):
        e1 = KWH[i % 4]
        rows += [
            (meter, "E1", t, e1, "A", 31, ingested),
            (meter, "B1", t, e1 if i % 3 == 0 else Decimal("0.125"), "A", 31, ingested),
            (meter, "Q1", t, Decimal("0.75") + i, "E" if i % 5 == 0 else "A", 31, ingested),
        ]
        t += timedelta(minutes=30)
        i += 1
    return rows


def _insert_channels(db, source: str, rows: list[tuple]) -> None:
    table = f"meter.readings_{source.lower()}"
    db.execute(
        "SELECT meter.ensure_partitions(%s::regclass, %s, %s)",
        (table, min(r[2] for r in rows), max(r[2] for r in rows) + timedelta(minutes=30)),
    )
    with db.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {table} ({CH_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows
        )


def _channel_table(db, source: str) -> list[tuple]:
    return db.execute(
        f"SELECT {CH_COLUMNS} FROM meter.readings_{source.lower()} "
        "ORDER BY meter_id, channel, interval_start"
    ).fetchall()


def _manifest(s3_client, bucket: str, source: str, day: date) -> dict:
    key = archive.manifest_key(source, day)
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_solar_meters_import_export_and_reactive_channels_are_archived_and_restored_exactly(
    db, bucket, s3_client
):
    import pyarrow.parquet as pq

    rows = _solar()
    _insert_channels(db, "A", rows)
    before = _channel_table(db, "A")
    assert len(before) == 3 * 2 * 48

    summary = archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="ch")
    assert summary["sources"]["A"]["rows_removed"] == len(rows)  # no channel collided
    assert _channel_table(db, "A") == []

    day = date(2025, 2, 5)
    manifest = _manifest(s3_client, bucket, "A", day)
    assert manifest["schema_version"] == 2
    on_day = [r for r in rows if r[2].date() == day]
    per_channel = {c: (v["rows"], Decimal(v["kwh_sum"])) for c, v in manifest["channels"].items()}
    assert per_channel == {
        c: (48, sum(r[3] for r in on_day if r[1] == c)) for c in ("B1", "E1", "Q1")
    }
    [obj] = manifest["objects"]
    data = s3_client.get_object(Bucket=bucket, Key=obj["key"])["Body"].read()
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names[:3] == ["meter_id", "channel", "interval_start"]
    assert table.schema.metadata[b"meterflow.schema_version"] == b"2"
    assert sorted(set(table["channel"].to_pylist())) == ["B1", "E1", "Q1"]

    out = archive.restore(source="A", first_day=date(2025, 2, 5), last_day=date(2025, 2, 6))
    assert out["rows_restored"] == len(rows)
    assert _channel_table(db, "A") == before  # values, channels, qualities, batches: exact


def test_a_day_whose_channels_differ_in_the_parquet_is_not_archived(db, bucket, monkeypatch):
    """The export's figures are checked per channel: a Parquet that holds the same rows and kWh
    in total but a B1 reading labelled E1 stops the run before anything is uploaded or
    deleted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _insert_channels(db, "A", _solar())
    before = _channel_table(db, "A")
    real = archive.csv_to_table

    def relabelled(data: bytes):
        table = real(data)
        first_b1 = pc.index(table["channel"], "B1").as_py()
        labels = table["channel"].to_pylist()
        labels[first_b1] = "E1"
        return table.set_column(1, table.schema.field("channel"), pa.array(labels, pa.string()))

    monkeypatch.setattr(archive, "csv_to_table", relabelled)
    with pytest.raises(archive.ArchiveError, match=r"B1 47 rows.*B1 48 rows"):
        archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="swap")
    assert _channel_table(db, "A") == before


def _write_v1_day(s3_client, bucket: str, source: str, day: date, rows: list[tuple]) -> None:
    """An archived day exactly as schema version 1 wrote it (before channels): no channel
    column, schema_version 1 in the Parquet metadata and the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    scale = max(-r[2].as_tuple().exponent for r in rows)
    schema = pa.schema(
        [
            pa.field("meter_id", pa.string(), nullable=False),
            pa.field("interval_start", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("kwh", pa.decimal128(38, scale), nullable=False),
            pa.field("quality", pa.string(), nullable=False),
            pa.field("batch_id", pa.int64(), nullable=False),
            pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ],
        metadata={"meterflow.schema_version": "1"},
    )
    table = pa.Table.from_pylist(
        [dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    prefix = archive.day_prefix(source, day)
    key = f"{prefix}/readings_{source.lower()}_{day:%Y-%m-%d}_{sha[:12]}.parquet"
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    total = str(sum(r[2] for r in rows))
    manifest = {
        "schema_version": 1,
        "source": source,
        "table": f"meter.readings_{source.lower()}",
        "day": day.isoformat(),
        "rows": len(rows),
        "kwh_sum": total,
        "min_interval_start": min(r[1] for r in rows).isoformat(),
        "max_interval_start": max(r[1] for r in rows).isoformat(),
        "columns": [f"{f.name}:{f.type}" for f in schema],
        "compression": "zstd",
        "objects": [
            {"key": key, "bytes": len(data), "sha256": sha, "rows": len(rows), "kwh_sum": total}
        ],
        "run_id": "archive__v1",
        "created_at": "2025-03-01T00:00:00+00:00",
    }
    s3_client.put_object(
        Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode()
    )


def test_a_day_archived_with_schema_version_1_restores_as_channel_e1(db, bucket, s3_client):
    day = date(2025, 1, 31)
    v1 = [r for r in _readings("A") if r[1].date() == day]
    _write_v1_day(s3_client, bucket, "A", day, v1)

    out = archive.restore(source="A", first_day=day)

    assert out["rows_restored"] == len(v1) == 2 * 48
    assert _channel_table(db, "A") == sorted(
        (m, "E1", t, kwh, q, b, i) for m, t, kwh, q, b, i in v1
    )
    again = archive.restore(source="A", first_day=day)
    assert (again["rows_restored"], again["rows_already_present"]) == (0, len(v1))


def test_a_late_export_reading_merges_into_a_version_1_archive_as_version_2(db, bucket, s3_client):
    """A day archived before channels (version 1) gets a late B1 reading: the next run merges
    them into one version-2 object, the archived readings as E1 beside the B1 one."""
    day = date(2025, 1, 31)
    v1 = [r for r in _readings("A") if r[1].date() == day]
    _write_v1_day(s3_client, bucket, "A", day, v1)
    late = ("SMR89130A", "B1", v1[0][1], Decimal("0.5"), "A", 77, NOW)
    _insert_channels(db, "A", [late])

    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="merge")

    manifest = _manifest(s3_client, bucket, "A", day)
    assert manifest["schema_version"] == 2
    assert {c: v["rows"] for c, v in manifest["channels"].items()} == {"B1": 1, "E1": 2 * 48}
    assert _channel_table(db, "A") == []
    archive.restore(source="A", first_day=day)
    assert _channel_table(db, "A") == sorted(
        [(m, "E1", t, kwh, q, b, i) for m, t, kwh, q, b, i in v1] + [late]
    )
