#!/usr/bin/env bash
# Airflow on the local stack: api-server (UI), scheduler, dag-processor, triggerer.
# Usage: scripts/airflow.sh migrate|start|stop|status. Idempotent; stopped by pid.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

RUN="$MF_VAR/run"
LOG="$MF_VAR/log"
COMPONENTS=(api-server scheduler dag-processor triggerer)
mkdir -p "$RUN" "$LOG" "$AIRFLOW_HOME" "$MF_LANDING_DIR"

say() { printf '[airflow] %s\n' "$*"; }
die() { printf '[airflow] ERROR: %s\n' "$*" >&2; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Secrets shared by the components (JWT for the execution API, the UI's session key), made
# once per machine under var/ and never committed.
SECRETS="$AIRFLOW_HOME/secrets.env"
if [ ! -f "$SECRETS" ]; then
  umask 077
  {
    echo "export AIRFLOW__API_AUTH__JWT_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    echo "export AIRFLOW__API__SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
  } >"$SECRETS"
fi
# shellcheck disable=SC1090
. "$SECRETS"

migrate() {
  say "airflow db migrate (metadata in the local PostgreSQL)"
  airflow db migrate >"$LOG/airflow-db-migrate.log" 2>&1 ||
    die "airflow db migrate failed; see $LOG/airflow-db-migrate.log"
}

start() {
  local c
  if alive "$RUN/api-server.pid"; then :; elif port_busy "$MF_API_PORT"; then
    die "port $MF_API_PORT is taken by another program; set MF_API_PORT"
  fi
  for c in "${COMPONENTS[@]}"; do
    if alive "$RUN/$c.pid"; then say "$c already running (pid $(cat "$RUN/$c.pid"))"; continue; fi
    # setsid: each component leads its own process group, so stop can end its children too.
    setsid nohup airflow "$c" >"$LOG/$c.log" 2>&1 < /dev/null &
    echo $! >"$RUN/$c.pid"
    say "$c started (pid $!, log $LOG/$c.log)"
  done
  for _ in $(seq 240); do
    curl -sf "http://127.0.0.1:$MF_API_PORT/api/v2/version" >/dev/null && break
    alive "$RUN/api-server.pid" || die "api-server exited; see $LOG/api-server.log"
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$MF_API_PORT/api/v2/version" >/dev/null ||
    die "api-server did not answer within 120 s; see $LOG/api-server.log"
  say "UI: http://localhost:$MF_API_PORT  login: $(login)"
}

login() {
  local f="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  if [ -f "$f" ]; then
    python -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join(f"{u} / {p}" for u,p in d.items()))' "$f"
  else
    echo "see $f"
  fi
}

stop() {
  local c pid
  for c in "${COMPONENTS[@]}"; do
    if alive "$RUN/$c.pid"; then
      pid="$(cat "$RUN/$c.pid")"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      say "$c stopped"
    fi
    rm -f "$RUN/$c.pid"
  done
}

status() {
  local c
  for c in "${COMPONENTS[@]}"; do
    alive "$RUN/$c.pid" && say "$c running (pid $(cat "$RUN/$c.pid"))" || say "$c stopped"
  done
}

case "${1:-start}" in
  migrate) migrate ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  login) login ;;
  *) die "usage: $0 migrate|start|stop|status|login" ;;
esac
