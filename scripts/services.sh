#!/usr/bin/env bash
# The local stack: PostgreSQL 15 (port MF_PG_PORT), s3rver S3 (MF_S3_PORT), aiosmtpd (MF_SMTP_PORT).
# Usage: scripts/services.sh start|stop|status|clean. Idempotent; state under var/; stopped by
# pid. `clean` (after stop) deletes the state that lives outside var/ (see pg_place); `make
# clean` runs it, then deletes var/.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

RUN="$MF_VAR/run"
LOG="$MF_VAR/log"
PG="$MF_VAR/pg"  # the cluster's folder: a folder, or a link to one postgres can reach
pg_paths() {  # postgres is given real paths: it may not be able to pass through var/ to a link
  local real; real="$(realpath -m "$PG")"
  PGDATA="$real/data" PGSOCK="$real/run" PGLOG="$real/postgres.log"
}
pg_paths
# Where a cluster goes when the postgres OS user cannot reach var/ (root only).
PG_STATE_ROOT="${MF_PG_STATE_ROOT:-/var/lib/meterflow}"
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
as_pg() {  # initdb/postgres refuse to run as root: run them as the postgres OS user,
  # from / (the caller's folder may be closed to postgres).
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_outside() {  # the folder for this clone's cluster outside var/: one per var/ path
  local id
  id="$(printf '%s' "$(realpath -m "$MF_VAR")" | sha256sum | cut -c1-16)"
  echo "$PG_STATE_ROOT/$id"
}

# The cluster's files must be owned by, and reachable for, the user that runs postgres. As a
# normal user that is us, and var/pg is a plain folder. As root it is the postgres OS user,
# which cannot reach var/ when a parent folder is closed to others (root's home is 0700, so is
# a mktemp -d folder): then the cluster lives in $PG_STATE_ROOT/<id of this var/>, owned by
# postgres, and var/pg is a link to it. The choice is made once, when there is no cluster yet.
pg_place() {
  [ "$(id -u)" = 0 ] || { mkdir -p "$PG"; return; }
  if [ -L "$PG" ]; then  # placed outside before: make sure the target is there
    local target; target="$(readlink "$PG")"
    [ -d "$target" ] || pg_make_outside "$target"
    return
  fi
  mkdir -p "$PG"
  [ -f "$PGDATA/PG_VERSION" ] || chown postgres: "$PG"
  as_pg test -w "$PG" -a -x "$PG" && return
  [ -f "$PGDATA/PG_VERSION" ] &&
    die "the cluster in $PGDATA is not reachable for the postgres OS user (a parent folder of
  $MF_VAR is closed to others): make the parents traversable (chmod o+x) or move the clone"
  rmdir "$PG" 2>/dev/null || die "$PG cannot be reached by the postgres OS user and is not empty"
  local outside; outside="$(pg_outside)"
  pg_make_outside "$outside"
  ln -s "$outside" "$PG"
  say "NOTE: the postgres OS user cannot reach $MF_VAR (a parent folder is closed to others),"
  say "      so this clone's PostgreSQL cluster lives in $outside (linked from var/pg)."
  say "      \`make clean\` deletes it with var/; nothing of yours was made wider open."
}

pg_make_outside() {  # dir: create it for postgres, with a note saying whose it is
  local dir="$1"
  [ "$(dirname "$dir")" = "$PG_STATE_ROOT" ] ||
    die "refusing to use $dir: not under $PG_STATE_ROOT (MF_PG_STATE_ROOT)"
  { mkdir -p "$PG_STATE_ROOT" && chmod 755 "$PG_STATE_ROOT" && mkdir -p "$dir" &&
    chown postgres: "$dir" && chmod 700 "$dir"; } 2>/dev/null ||
    die "cannot create $dir for the postgres OS user, and postgres cannot reach $MF_VAR either:
  make the clone's parent folders traversable (chmod o+x), move the clone, or set
  MF_PG_STATE_ROOT to a folder root can write that postgres can reach"
  as_pg test -w "$dir" ||
    die "the postgres OS user cannot write $dir: set MF_PG_STATE_ROOT to a folder it can reach"
  [ -f "$dir/data/PG_VERSION" ] && say "reusing the cluster left in $dir by an earlier var/"
  realpath -m "$MF_VAR" >"$dir.owner"
}

pg_clean() {  # delete a cluster that lives outside var/ (var/ itself is make clean's)
  [ -L "$PG" ] || return 0
  local target; target="$(readlink "$PG")"
  [ "$(dirname "$target")" = "$PG_STATE_ROOT" ] ||
    die "var/pg links to $target, not under $PG_STATE_ROOT: not deleting it"
  rm -rf "$target" "$target.owner"
  rm -f "$PG"
  say "deleted the PostgreSQL cluster in $target"
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
    pg_place
    pg_paths
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
      say "initdb $PGDATA (scram password auth; the password is generated into $PG/password)"
      pg_password >/dev/null
      as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth=scram-sha-256 \
        --pwfile="$(realpath -m "$PG")/password" -E UTF8 --locale=C.UTF-8 \
        >"$LOG/initdb.log" 2>&1 || die "initdb failed; see $LOG/initdb.log"
    fi
    as_pg mkdir -p "$PGSOCK"
    as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start \
      -o "-p $MF_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGSOCK \
          -c max_connections=200 -c shared_buffers=512MB -c fsync=on \
          -c max_wal_size=4GB -c checkpoint_timeout=15min -c timezone=UTC" \
      >/dev/null || die "postgres did not start; see $PGLOG"
    say "postgres up on 127.0.0.1:$MF_PG_PORT (data $PGDATA)"
  fi
  pg_auth "$bin"
  local psql=("$bin/psql" -h 127.0.0.1 -p "$MF_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  local role db
  for role in meterflow airflow; do
    [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='$role'")" = 1 ] ||
      "${psql[@]}" -c "create role $role login createdb"
    "${psql[@]}" -v role="$role" -v pw="$(pg_password)" <<<"alter role :\"role\" password :'pw'"
  done
  for db in meters:meterflow airflow:airflow; do
    [ "$("${psql[@]}" -c "select 1 from pg_database where datname='${db%%:*}'")" = 1 ] ||
      "${psql[@]}" -c "create database ${db%%:*} owner ${db##*:}"
  done
}

# --- PostgreSQL password auth (scram) -----------------------------------------------------
# One generated password for the local roles (postgres, meterflow, airflow), kept with the
# cluster (var/pg/password, so it follows a cluster kept outside var/), and a libpq password
# file var/pg/pgpass for this port that every client reads through PGPASSFILE (scripts/env.sh):
# psql, the Airflow connections, the tests and benches. No URL carries the password.
pg_password() {  # print the password, generating it the first time
  local f="$PG/password"
  if [ ! -s "$f" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$f")
    [ "$(id -u)" = 0 ] && chown --reference="$PG" "$f"  # initdb (postgres) reads it
  fi
  cat "$f"
}

pg_auth() {  # bin: the pgpass file for this port; a cluster made with trust is moved to scram
  local bin="$1" pw; pw="$(pg_password)"
  (umask 077 && printf '127.0.0.1:%s:*:*:%s\nlocalhost:%s:*:*:%s\n' \
    "$MF_PG_PORT" "$pw" "$MF_PG_PORT" "$pw" >"$PG/pgpass")
  export PGPASSFILE; PGPASSFILE="$(realpath -m "$PG")/pgpass"
  local hba="$PGDATA/pg_hba.conf"
  if as_pg grep -qE '^[[:space:]]*(local|host)[[:space:]].*[[:space:]]trust[[:space:]]*$' "$hba"; then
    say "this cluster trusted every local connection: setting the generated password on its"
    say "roles and switching $hba to scram-sha-256 (password in $PG/password)"
    "$bin/psql" -h 127.0.0.1 -p "$MF_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt \
      -v pw="$pw" <<<"alter role postgres password :'pw'" || die "could not set the password"
    as_pg sed -i -E 's/[[:space:]]trust[[:space:]]*$/ scram-sha-256/' "$hba"
    as_pg "$bin/pg_ctl" -D "$PGDATA" reload >/dev/null || die "postgres did not reload $hba"
  fi
  "$bin/psql" -h 127.0.0.1 -p "$MF_PG_PORT" -U postgres -qAt -c 'select 1' >/dev/null 2>&1 ||
    die "postgres refuses the password in $PG/password (the file was replaced or lost?).
  Either delete the cluster (scripts/services.sh clean; rm -rf $PG) and start again, or as the
  cluster's owner set 'trust' in $hba, reload, and run this again: it sets the password anew"
}

pg_stop() {
  local bin
  if bin="$(pg_bin 2>/dev/null)" && [ -f "$PGDATA/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 && say "postgres stopped" || true
  fi
}

# --- S3 (s3rver: objects are files under var/s3/data, so they survive a restart) ------------
# s3rver is a node program, pinned with its whole tree in tools/s3rver/package-lock.json and
# installed with `npm ci` into var/s3/tool (again whenever the lock changes); tools/s3rver/
# serve.js starts it.
S3_TOOL="$MF_VAR/s3/tool"
S3_DATA="$MF_VAR/s3/data"

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return
  say "node/npm not found: installing the Debian nodejs and npm packages"
  [ "$(id -u)" = 0 ] || die "node and npm are needed for the local S3: apt-get install nodejs npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  command -v node >/dev/null || die "nodejs installed but node still not found"
}

s3_install() {
  local src="$MF_HOME/tools/s3rver" stamp="$S3_TOOL/.installed"
  [ -f "$stamp" ] && cmp -s "$stamp" "$src/package-lock.json" && return
  ensure_node
  say "installing s3rver (tools/s3rver/package-lock.json) into $S3_TOOL"
  mkdir -p "$S3_TOOL"
  cp "$src/package.json" "$src/package-lock.json" "$S3_TOOL/"
  (cd "$S3_TOOL" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) \
    >"$LOG/s3-install.log" 2>&1 || die "npm ci of s3rver failed; see $LOG/s3-install.log"
  cp "$src/package-lock.json" "$stamp"
}

s3_start() {
  if alive "$RUN/s3.pid"; then say "s3 already running on 127.0.0.1:$MF_S3_PORT"; else
    port_busy "$MF_S3_PORT" && die "port $MF_S3_PORT is taken by another program; set MF_S3_PORT"
    s3_install
    mkdir -p "$S3_DATA"
    NODE_PATH="$S3_TOOL/node_modules" nohup node --openssl-legacy-provider \
      "$MF_HOME/tools/s3rver/serve.js" "$S3_DATA" "$MF_S3_PORT" \
      >>"$LOG/s3.log" 2>&1 &
    echo $! >"$RUN/s3.pid"
    wait_port s3 "$MF_S3_PORT" "$RUN/s3.pid" 30
    say "s3 (s3rver) up on http://127.0.0.1:$MF_S3_PORT (objects in $S3_DATA)"
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
  clean) stop_pid smtp; stop_pid s3; pg_stop; pg_clean ;;
  status)
    for s in s3 smtp; do alive "$RUN/$s.pid" && say "$s running (pid $(cat "$RUN/$s.pid"))" || say "$s stopped"; done
    port_busy "$MF_PG_PORT" && say "postgres answering on $MF_PG_PORT" || say "postgres stopped" ;;
  *) die "usage: $0 start|stop|status|clean" ;;
esac
