# shellcheck shell=bash
# Source me: `source scripts/env.sh`. Gives a shell the venv and every meterflow variable.
# Every value can be overridden by exporting it before sourcing (e.g. to point at a real
# PostgreSQL, S3 or SMTP server instead of the local stand-ins; see README "Real services").

MF_HOME="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export MF_HOME
export MF_VAR="${MF_VAR:-$MF_HOME/var}"

# Local stack ports (all on 127.0.0.1).
export MF_PG_PORT="${MF_PG_PORT:-5433}"
export MF_S3_PORT="${MF_S3_PORT:-5001}"
export MF_SMTP_PORT="${MF_SMTP_PORT:-1025}"
export MF_API_PORT="${MF_API_PORT:-8080}"

# Pipeline settings (see plugins/meterflow/config.py for every knob and its default).
export MF_LANDING_DIR="${MF_LANDING_DIR:-$MF_VAR/landing}"
export MF_S3_BUCKET="${MF_S3_BUCKET:-meterflow}"
export MF_OUTBOX_DIR="${MF_OUTBOX_DIR:-$MF_VAR/outbox}"

# Warehouse: a postgresql:// URL for psql, and the same database as an Airflow connection.
# The local cluster asks for a password (scram): scripts/services.sh generates it into
# var/pg/password and writes var/pg/pgpass, which libpq reads through PGPASSFILE — so psql, the
# Airflow connections, tests and benches authenticate without a password in any URL. A
# PGPASSFILE of your own is kept: add the line of var/pg/pgpass to it.
export PGPASSFILE="${PGPASSFILE:-$MF_VAR/pg/pgpass}"
export MF_WAREHOUSE_URL="${MF_WAREHOUSE_URL:-postgresql://meterflow@127.0.0.1:$MF_PG_PORT/meters}"
export AIRFLOW_CONN_METER_WAREHOUSE="${AIRFLOW_CONN_METER_WAREHOUSE:-$MF_WAREHOUSE_URL}"
# JSON defaults through a plain variable: in ${X:-{...}} the first "}" ends the expansion, so a
# second source appended "}" to a value already set.
_mf_aws="{\"conn_type\": \"aws\", \"login\": \"meterflow-local\", \"password\": \"meterflow-local\", \"extra\": {\"endpoint_url\": \"http://127.0.0.1:$MF_S3_PORT\", \"region_name\": \"eu-west-2\"}}"
export AIRFLOW_CONN_AWS_DEFAULT="${AIRFLOW_CONN_AWS_DEFAULT:-$_mf_aws}"
_mf_smtp="{\"conn_type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": $MF_SMTP_PORT, \"extra\": {\"disable_tls\": true, \"disable_ssl\": true, \"from_email\": \"meterflow@localhost\", \"timeout\": 10, \"retry_limit\": 1}}"
export AIRFLOW_CONN_SMTP_DEFAULT="${AIRFLOW_CONN_SMTP_DEFAULT:-$_mf_smtp}"
_mf_fs="{\"conn_type\": \"fs\", \"extra\": {\"path\": \"$MF_LANDING_DIR\"}}"
export AIRFLOW_CONN_FS_DEFAULT="${AIRFLOW_CONN_FS_DEFAULT:-$_mf_fs}"

# Airflow: home under var/, metadata in the local PostgreSQL, LocalExecutor.
export AIRFLOW_HOME="${AIRFLOW_HOME:-$MF_VAR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$MF_HOME/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$MF_HOME/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# A 2-core machine: a few LocalExecutor workers, one API worker.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-6}"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://airflow@127.0.0.1:$MF_PG_PORT/airflow}"
export AIRFLOW__API__PORT="$MF_API_PORT"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://localhost:$MF_API_PORT}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://localhost:$MF_API_PORT/execution/}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$MF_VAR/airflow/simple_auth_manager_passwords.json.generated}"
export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL:-10}"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-10}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
# plugins/ on the path so `import meterflow` works in scripts and tests as in Airflow.
export PYTHONPATH="$MF_HOME/plugins${PYTHONPATH:+:$PYTHONPATH}"

if [ -f "$MF_HOME/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$MF_HOME/.venv/bin/activate"
fi
