"""Warehouse access: connections, versioned migrations.

The warehouse is the Airflow connection ``meter_warehouse`` (config ``warehouse_conn_id``).
Code talks to it with psycopg 3 (COPY, server-side cursors); the connection's parameters come
from Airflow's connection store (AIRFLOW_CONN_* env vars, the metadata DB or a secrets backend),
so no credential lives in code.

Migrations are the files ``include/sql/migrations/V###__what.sql``, applied in order, each in
its own transaction, recorded in ``public.schema_migrations`` with the file's sha256. Applying
is serialised by an advisory lock, a no-op when everything is applied, and refuses to run when
an applied file was edited afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from meterflow import SQL_DIR, config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^V(\d{3,})__([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6D65746572  # "meter": advisory lock id that serialises migrations


class MigrationError(RuntimeError):
    """A migration cannot be applied safely."""


def conninfo(conn_id: str | None = None) -> str:
    """A libpq URL for the Airflow connection ``conn_id`` (default: the warehouse)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id or config.get("warehouse_conn_id"))
    return psycopg.conninfo.make_conninfo(
        host=conn.host or "localhost",
        port=conn.port or 5432,
        dbname=conn.schema or "meters",
        user=conn.login or None,
        password=conn.password or None,
        application_name="meterflow",
        **{k: v for k, v in (conn.extra_dejson or {}).items() if k in {"sslmode", "sslrootcert"}},
    )


def connect(conn_id: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """A new psycopg connection to the warehouse; the caller closes it (use ``with``)."""
    return psycopg.connect(conninfo(conn_id), autocommit=autocommit)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a badly named or duplicate version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration files are named V###__lower_snake.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} also used by {found[version].path}")
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   char(64)    NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; return those applied now. ``conn`` must be in autocommit."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(_BOOKKEEPING)
        applied = {
            v: (name, checksum)
            for v, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM public.schema_migrations"
            )
        }
        for mig in migrations:
            if mig.version in applied:
                if applied[mig.version][1] != mig.checksum:
                    raise MigrationError(
                        f"{mig.path.name} was edited after it was applied (checksum "
                        f"{applied[mig.version][1][:12]}… in the database, {mig.checksum[:12]}… "
                        "on disk): add a new migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(mig.sql)
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum) "
                    "VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
            log.info("applied migration %s", mig.path.name)
            applied_now.append(mig)
        unknown = sorted(set(applied) - {m.version for m in migrations})
        if unknown:
            log.warning("database has migrations %s that are not on disk", unknown)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def pending(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations on disk that the database has not applied (cheap: one small query)."""
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    done: set[int] = set()
    if exists and exists[0]:
        done = {v for (v,) in conn.execute("SELECT version FROM public.schema_migrations")}
    return [m for m in discover(directory) if m.version not in done]


def ensure_schema(conn_id: str | None = None) -> int:
    """The cheap check DAGs run first: apply pending migrations if any; return how many."""
    with connect(conn_id, autocommit=True) as conn:
        if not pending(conn):
            return 0
        return len(migrate(conn))


def main(argv: list[str] | None = None) -> int:
    """``python -m meterflow.warehouse migrate|status``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = argv if argv is not None else sys.argv[1:]
    cmd = args[0] if args else "migrate"
    try:
        with connect(autocommit=True) as conn:
            if cmd == "migrate":
                done = migrate(conn)
                print(f"warehouse: {len(done)} migration(s) applied, schema up to date")
            elif cmd == "status":
                todo = pending(conn)
                print(f"warehouse: {len(todo)} pending: {[m.path.name for m in todo]}")
            else:
                print("usage: python -m meterflow.warehouse migrate|status", file=sys.stderr)
                return 2
    except (MigrationError, psycopg.Error) as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
