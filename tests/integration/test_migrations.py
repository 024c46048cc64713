"""Versioned migrations against the real PostgreSQL."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from meterflow import warehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_db(warehouse_url):
    """A second, empty database for migration tests (the session DB is already migrated)."""
    from tests.conftest import _admin

    name = "mf_mig_" + warehouse_url.rsplit("_", 1)[-1]
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" OWNER meterflow')
    url = warehouse_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_fresh_database_gets_every_schema_and_table(empty_db):
    applied = warehouse.migrate(empty_db)
    assert [m.version for m in applied] == [m.version for m in warehouse.discover()]
    tables = {
        r[0]
        for r in empty_db.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname IN ('staging', 'meter', 'audit')"
        )
    }
    assert {
        "staging.reading",
        "meter.meter",
        "meter.readings_a",
        "meter.readings_b",
        "meter.readings_c",
        "audit.load_batch",
        "audit.rejected_row",
        "audit.quality_result",
        "audit.archive_run",
        "audit.delivery",
    } <= tables
    kinds = dict(
        empty_db.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname LIKE 'readings\\__' "
        ).fetchall()
    )
    assert kinds == {"readings_a": "p", "readings_b": "p", "readings_c": "p"}


def test_reapplying_is_a_no_op(empty_db):
    warehouse.migrate(empty_db)
    before = empty_db.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert warehouse.migrate(empty_db) == []
    assert warehouse.pending(empty_db) == []
    after = empty_db.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert before == after


def test_an_edited_applied_migration_is_refused(empty_db, tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS_DIR, copy)
    warehouse.migrate(empty_db, copy)
    first = sorted(copy.glob("V001__*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an edit after the fact\n")
    with pytest.raises(warehouse.MigrationError, match=r"V001__.*edited after it was applied"):
        warehouse.migrate(empty_db, copy)


def test_only_new_migrations_are_applied_in_order(empty_db, tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS_DIR, copy)
    warehouse.migrate(empty_db, copy)
    (copy / "V900__later_b.sql").write_text("CREATE TABLE audit.t900 (x int);")
    (copy / "V899__later_a.sql").write_text("CREATE TABLE audit.t899 (x int);")
    applied = warehouse.migrate(empty_db, copy)
    assert [m.version for m in applied] == [899, 900]


def test_a_failing_migration_leaves_nothing_half_applied(empty_db, tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS_DIR, copy)
    warehouse.migrate(empty_db, copy)
    (copy / "V901__broken.sql").write_text("CREATE TABLE audit.t901 (x int); SELECT 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        warehouse.migrate(empty_db, copy)
    assert empty_db.execute("SELECT to_regclass('audit.t901')").fetchone()[0] is None
    assert [m.version for m in warehouse.pending(empty_db, copy)] == [901]


def test_partitions_are_created_monthly_on_demand(db):
    made = db.execute(
        "SELECT meter.ensure_partitions('meter.readings_b', '2025-03-30', '2025-05-01')"
    ).fetchone()[0]
    assert made == 2  # March and April 2025
    again = db.execute(
        "SELECT meter.ensure_partitions('meter.readings_b', '2025-03-01', '2025-04-15')"
    ).fetchone()[0]
    assert again == 0
    db.execute(
        "INSERT INTO meter.readings_b VALUES ('SMR89134B', '2025-04-30 23:30Z', 1.5, 'A', 1, now())"
    )
    where = db.execute("SELECT tableoid::regclass::text FROM meter.readings_b").fetchone()[0]
    assert where == "meter.readings_b_202504"


def test_channels_migration_moves_every_existing_reading_to_import_e1(empty_db, tmp_path):
    before = tmp_path / "before"
    before.mkdir()
    for migration in warehouse.discover():
        if migration.version < 15:
            shutil.copy(migration.path, before / migration.path.name)
    warehouse.migrate(empty_db, before)
    empty_db.execute(
        "SELECT meter.ensure_partitions('meter.readings_a', '2025-01-01', '2025-02-01')"
    )
    empty_db.execute(
        """INSERT INTO meter.readings_a (meter_id, interval_start, kwh, quality, batch_id,
                                         ingested_at)
           SELECT 'SMR89134A', '2025-01-15'::timestamptz + n * interval '30 minutes', n, 'A', 1,
                  now()
             FROM generate_series(0, 47) n"""
    )
    empty_db.execute(
        "INSERT INTO staging.reading VALUES (2, 2, 'SMR89135B', 'B', '2025-01-15', 1.5, 'A', now())"
    )
    applied = warehouse.migrate(empty_db)
    assert [m.version for m in applied if m.version == 15] == [15]
    assert empty_db.execute(
        "SELECT channel, count(*), sum(kwh) FROM meter.readings_a GROUP BY channel"
    ).fetchall() == [("E1", 48, 1128)]
    assert empty_db.execute("SELECT channel FROM staging.reading").fetchall() == [("E1",)]
    # the key now holds a meter's channels side by side
    empty_db.execute(
        """INSERT INTO meter.readings_a (meter_id, channel, interval_start, kwh, quality,
                                         batch_id, ingested_at)
           VALUES ('SMR89134A', 'B1', '2025-01-15', 0.7, 'A', 3, now())"""
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        empty_db.execute(
            """INSERT INTO meter.readings_a (meter_id, channel, interval_start, kwh, quality,
                                             batch_id, ingested_at)
               VALUES ('SMR89134A', 'E1', '2025-01-15', 0.7, 'A', 3, now())"""
        )


@pytest.mark.parametrize("channel", ["E1", "E2", "B1", "B2", "Q1", "K1", "V1", "11", "A"])
def test_channel_kind_in_sql_is_the_models_rule(db, channel):
    from meterflow.models import channel_kind

    (kind,) = db.execute("SELECT meter.channel_kind(%s)", (channel,)).fetchone()
    assert kind == channel_kind(channel).value
