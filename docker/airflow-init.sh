#!/usr/bin/env bash
# airflow-init (docker-compose.yaml): runs once, as root, before any other Airflow service.
# 1. the folders shared through bind mounts, owned by AIRFLOW_UID (as the official init does);
# 2. the UI login of the simple auth manager, from _AIRFLOW_WWW_USER_USERNAME / _PASSWORD;
# 3. the Airflow metadata DB (`airflow db migrate`);
# 4. the warehouse schema (`python -m meterflow.warehouse migrate`, the same versioned
#    migrations as `make migrate`; a no-op when up to date, refuses edited applied files).
# Every Airflow/Python command goes through the image's /entrypoint, which waits for the
# metadata DB and sets up the Python path for root.
set -euo pipefail

uid="${AIRFLOW_UID:-50000}"
if [[ -z "${AIRFLOW_UID:-}" ]]; then
  echo "WARNING: AIRFLOW_UID is not set; files in var/compose/ will belong to uid 50000."
  echo "         On Linux: echo \"AIRFLOW_UID=\$(id -u)\" >> .env  (see .env.example)"
fi

echo "[init] folders"
mkdir -p /opt/airflow/logs /opt/airflow/config "${MF_VAR:-/opt/airflow/var}" \
  "${MF_LANDING_DIR:-/opt/airflow/var/landing}"/{spreadsheets,nem12,stream,processed,failed}
chown -R "${uid}:0" /opt/airflow/logs /opt/airflow/config "${MF_VAR:-/opt/airflow/var}"

echo "[init] UI login"
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-/opt/airflow/config/simple_auth_manager_passwords.json.generated}"
python3 - "$passwords" <<'PY'
import json, os, sys
user = os.environ.get("_AIRFLOW_WWW_USER_USERNAME") or "admin"
password = os.environ.get("_AIRFLOW_WWW_USER_PASSWORD")
if not password:  # never a known default (docker-compose.yaml requires it too)
    sys.exit("[init] _AIRFLOW_WWW_USER_PASSWORD is not set: set it in .env")
with open(sys.argv[1], "w") as f:
    json.dump({user: password}, f)
print(f"[init] UI login: {user} / (password from _AIRFLOW_WWW_USER_PASSWORD)")
PY
chown "${uid}:0" "$passwords"
chmod 0600 "$passwords"

echo "[init] Airflow metadata DB"
/entrypoint airflow db migrate

echo "[init] warehouse schema"
/entrypoint python -m meterflow.warehouse migrate

echo "[init] done: $(/entrypoint airflow version 2>/dev/null | tail -1)"
