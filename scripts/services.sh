#!/usr/bin/env bash
# The local stack: PostgreSQL 15 (port MF_PG_PORT), moto S3 (MF_S3_PORT), aiosmtpd (MF_SMTP_PORT).
# Usage: scripts/services.sh start|stop|status. Idempotent; state under var/; stopped by pid.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

RUN="$MF_VAR/run"
LOG="$MF_VAR/log"
PGDATA="$MF_VAR/pg/data"
PGSOCK="$MF_VAR/pg/run"
mkdir -p "$RUN" "$LOG"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() {  # name port pidfile seconds
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    port_busy "$2" && return 0
    if [ -n "$3" ] && ! alive "$3"; then die "$1 exited at start; see $LOG/$1.log"; fi
    sleep 0.1
  done
  die "$1 did not open port $2 within $4 s; see $LOG/$1.log"
}

# --- PostgreSQL --------------------------------------------------------------------------
as_pg() {  # initdb/postgres refuse to run as root: run them as the postgres OS user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local d
  for d in "${MF_PG_BIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
  return 1
}

ensure_pg_installed() {
  pg_bin >/dev/null && return
  say "initdb not found: installing the Debian postgresql package"
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and we are not root: apt-get install postgresql"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin >/dev/null || die "postgresql installed but initdb still not found"
}

pg_start() {
  ensure_pg_installed
  local bin; bin="$(pg_bin)"
  if [ -f "$PGDATA/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    say "postgres already running on 127.0.0.1:$MF_PG_PORT"
  else
    port_busy "$MF_PG_PORT" && die "port $MF_PG_PORT is taken by another program; set MF_PG_PORT"
    mkdir -p "$MF_VAR/pg"
    [ "$(id -u)" = 0 ] && chown postgres: "$MF_VAR/pg"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
      say "initdb $PGDATA"
      as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$LOG/initdb.log" 2>&1 || die "initdb failed; see $LOG/initdb.log"
    fi
    as_pg mkdir -p "$PGSOCK"
    as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$MF_VAR/pg/postgres.log" -w -t 60 start \
      -o "-p $MF_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGSOCK \
          -c max_connections=200 -c shared_buffers=512MB -c fsync=on \
          -c max_wal_size=4GB -c checkpoint_timeout=15min -c timezone=UTC" \
      >/dev/null || die "postgres did not start; see $MF_VAR/pg/postgres.log"
    say "postgres up on 127.0.0.1:$MF_PG_PORT (data $PGDATA)"
  fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$MF_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  local role db
  for role in meterflow airflow; do
    [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='$role'")" = 1 ] ||
      "${psql[@]}" -c "create role $role login createdb"
  done
  for db in meters:meterflow airflow:airflow; do
    [ "$("${psql[@]}" -c "select 1 from pg_database where datname='${db%%:*}'")" = 1 ] ||
      "${psql[@]}" -c "create database ${db%%:*} owner ${db##*:}"
  done
}

pg_stop() {
  local bin
  if bin="$(pg_bin 2>/dev/null)" && [ -f "$PGDATA/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 && say "postgres stopped" || true
  fi
}

# --- S3 (moto_server) ----------------------------------------------------------------------
s3_start() {
  if alive "$RUN/s3.pid"; then say "s3 already running on 127.0.0.1:$MF_S3_PORT"; else
    port_busy "$MF_S3_PORT" && die "port $MF_S3_PORT is taken by another program; set MF_S3_PORT"
    nohup moto_server -H 127.0.0.1 -p "$MF_S3_PORT" >"$LOG/s3.log" 2>&1 &
    echo $! >"$RUN/s3.pid"
    wait_port s3 "$MF_S3_PORT" "$RUN/s3.pid" 30
    say "s3 (moto) up on http://127.0.0.1:$MF_S3_PORT"
  fi
  python - <<'PY'
import os, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{os.environ['MF_S3_PORT']}",
                  aws_access_key_id="meterflow-local", aws_secret_access_key="meterflow-local",
                  region_name="eu-west-2")
bucket = os.environ["MF_S3_BUCKET"]
if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    print(f"[services] bucket s3://{bucket} created")
PY
}

# --- SMTP (aiosmtpd Mailbox -> Maildir) --------------------------------------------------
smtp_start() {
  if alive "$RUN/smtp.pid"; then say "smtp already running on 127.0.0.1:$MF_SMTP_PORT"; return; fi
  port_busy "$MF_SMTP_PORT" && die "port $MF_SMTP_PORT is taken by another program; set MF_SMTP_PORT"
  # The Mailbox handler creates the Maildir (tmp/new/cur) only when the path does not exist;
  # an existing directory must already be a whole Maildir.
  if [ -d "$MF_OUTBOX_DIR" ] && [ ! -d "$MF_OUTBOX_DIR/new" ]; then rmdir "$MF_OUTBOX_DIR"; fi
  nohup python -m aiosmtpd -n -l "127.0.0.1:$MF_SMTP_PORT" -c aiosmtpd.handlers.Mailbox \
    "$MF_OUTBOX_DIR" >"$LOG/smtp.log" 2>&1 &
  echo $! >"$RUN/smtp.pid"
  wait_port smtp "$MF_SMTP_PORT" "$RUN/smtp.pid" 30
  say "smtp up on 127.0.0.1:$MF_SMTP_PORT (mail lands in $MF_OUTBOX_DIR/new)"
}

stop_pid() {
  local f="$RUN/$1.pid"
  if alive "$f"; then
    kill "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done
    alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null || true
    say "$1 stopped"
  fi
  rm -f "$f"
}

case "${1:-start}" in
  start) pg_start; s3_start; smtp_start ;;
  stop) stop_pid smtp; stop_pid s3; pg_stop ;;
  status)
    for s in s3 smtp; do alive "$RUN/$s.pid" && say "$s running (pid $(cat "$RUN/$s.pid"))" || say "$s stopped"; done
    port_busy "$MF_PG_PORT" && say "postgres answering on $MF_PG_PORT" || say "postgres stopped" ;;
  *) die "usage: $0 start|stop|status" ;;
esac
