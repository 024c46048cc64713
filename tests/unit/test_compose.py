"""docker-compose.yaml is the same system as the local stack, for a team.

No Docker engine runs here, so the file is checked by parsing it (PyYAML resolves the
anchors and merge keys as Compose does) and interpolating ``${VAR:-default}`` with an
environment that sets only the required secrets, i.e. what ``docker compose up`` sees on a fresh
clone whose .env sets those (without them, Compose refuses to start: tested below).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from meterflow import config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
RAW = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict] = RAW["services"]

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_SERVICES = [*AIRFLOW_COMPONENTS, "airflow-init", "airflow-cli"]
ONE_SHOT = {"airflow-init", "minio-init"}
REPO_MOUNTS = {"dags": "/opt/airflow/dags", "plugins": "/opt/airflow/plugins"}
REPO_MOUNTS["include"] = "/opt/airflow/include"

# --- Compose variable interpolation (the subset of the spec the file uses) --------------------
_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value, env: dict[str, str] | None = None):
    """Resolve ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err} and $$ like Compose."""
    env = env or {}
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg")
        if op in (":-", ":?"):
            if env.get(name):
                return env[name]
            if op == ":?":
                raise KeyError(f"{name} is required: {arg}")
            return interpolate(arg, env)
        if op == "-":
            return env[name] if name in env else interpolate(arg, env)
        return env.get(name, "")

    return _VAR.sub(one, value)


def variables(value) -> dict[str, str | None]:
    """Every variable the file reads, with its inline default (None when it has none)."""
    found: dict[str, str | None] = {}
    if isinstance(value, dict):
        for v in value.values():
            found.update(variables(v))
    elif isinstance(value, list):
        for v in value:
            found.update(variables(v))
    elif isinstance(value, str):
        for m in _VAR.finditer(value):
            name = m.group("name") or m.group("bare")
            if name:
                found[name] = m.group("arg") if m.group("op") in (":-", "-") else None
    return found


# The secrets with no default (${VAR:?message}): Compose stops until .env sets each of them.
REQUIRED = {"AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "_AIRFLOW_WWW_USER_PASSWORD"}
REQUIRED.add("MF_STREAM_TOKEN")
SECRETS = {name: f"from-dot-env-{name.lower()}" for name in REQUIRED}
COMPOSE = interpolate(RAW, SECRETS)
SVC: dict[str, dict] = COMPOSE["services"]


def env_of(service: str) -> dict[str, str]:
    env = SVC[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts_of(service: str) -> dict[str, str]:
    """target → source of the service's volumes (short syntax)."""
    out = {}
    for spec in SVC[service].get("volumes") or []:
        source, target = spec.split(":")[:2]
        out[target] = source
    return out


def local_connection_ids() -> set[str]:
    text = (REPO / "scripts" / "env.sh").read_text()
    return {m.lower() for m in re.findall(r"^export AIRFLOW_CONN_([A-Z0-9_]+)=", text, re.M)}


# --- The layout --------------------------------------------------------------------------------


def test_the_official_airflow_3_services_and_meterflow_services_are_all_there():
    expected = {"postgres", "redis", *AIRFLOW_COMPONENTS, "airflow-init"}
    expected |= {"warehouse", "minio", "minio-init", "mailpit", "meter-stream"}
    assert expected <= set(SVC)
    for service, command in AIRFLOW_COMPONENTS.items():
        assert SVC[service]["command"] == command, service


def test_airflow_runs_the_celery_executor_on_redis_with_metadata_in_postgres():
    for service in AIRFLOW_SERVICES:
        env = env_of(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", service
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert metadata.hostname == "postgres"
        assert metadata.path == "/" + env_of("postgres")["POSTGRES_DB"]
        assert metadata.password == env_of("postgres")["POSTGRES_PASSWORD"]
        assert urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"]).hostname == "postgres"
        api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (api.hostname, api.port) == ("airflow-apiserver", 8080)
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"


def test_every_component_shares_one_jwt_secret_so_workers_can_reach_the_api_server():
    secrets = {env_of(s).get("AIRFLOW__API_AUTH__JWT_SECRET") for s in AIRFLOW_SERVICES}
    assert len(secrets) == 1 and None not in secrets and "" not in secrets


def test_airflow_and_the_stream_receiver_run_the_image_built_from_docker_dockerfile():
    users = [*AIRFLOW_SERVICES, "meter-stream"]
    assert len({SVC[s]["image"] for s in users}) == 1
    for service in users:
        build = SVC[service]["build"]
        assert (REPO / build["context"] / build["dockerfile"]) == REPO / "docker" / "Dockerfile"


def test_the_dockerfile_extends_the_official_image_at_the_locked_airflow_version():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", dockerfile, re.M)
    assert base, "docker/Dockerfile must start FROM apache/airflow:<version>-python<py>"
    locked = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert base.group(1) == locked.group(1)
    assert base.group(2) == "3.11"
    assert re.search(r"pip install .*-r \S*requirements\.txt", dockerfile)
    assert "COPY requirements.txt" in dockerfile


def test_the_build_context_leaves_out_the_venv_and_local_state():
    ignore = (REPO / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert "**" in ignore  # everything is excluded unless re-included
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not included & {".venv", "var", ".git", ".env"}
    for path in included:
        assert (REPO / path).exists(), f"the image copies {path}, which does not exist"


# --- Connections ----------------------------------------------------------------------------


def compose_connections(service: str = "airflow-worker") -> dict[str, dict]:
    from airflow.models.connection import Connection

    out = {}
    for key, value in env_of(service).items():
        if key.startswith("AIRFLOW_CONN_"):
            conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
            out[conn_id] = Connection.from_json(value, conn_id=conn_id)
    return out


def test_the_connection_ids_are_those_of_the_local_stack():
    ids = local_connection_ids()
    assert {"meter_warehouse", "aws_default", "smtp_default", "fs_default"} <= ids
    for service in AIRFLOW_SERVICES:
        assert set(compose_connections(service)) == ids, service
    for knob in ("warehouse_conn_id", "aws_conn_id", "smtp_conn_id", "fs_conn_id"):
        assert config.KNOBS[knob].default in ids


def test_meter_warehouse_points_at_the_warehouse_database():
    conn = compose_connections()["meter_warehouse"]
    db = env_of("warehouse")
    assert conn.conn_type == "postgres"
    assert (conn.host, conn.port) == ("warehouse", 5432)
    assert (conn.schema, conn.login) == (db["POSTGRES_DB"], db["POSTGRES_USER"])
    assert conn.password == db["POSTGRES_PASSWORD"]


def test_aws_default_reaches_minio_through_endpoint_url_with_its_credentials():
    conn = compose_connections()["aws_default"]
    minio = env_of("minio")
    assert conn.conn_type == "aws"
    endpoint = urlsplit(conn.extra_dejson["endpoint_url"])
    assert (endpoint.hostname, endpoint.port) == ("minio", 9000)
    assert "server /data" in SVC["minio"]["command"]
    assert (conn.login, conn.password) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])


def test_smtp_default_sends_to_mailpit():
    conn = compose_connections()["smtp_default"]
    assert conn.conn_type == "smtp"
    assert (conn.host, conn.port) == ("mailpit", 1025)
    assert 1025 in SVC["mailpit"]["expose"]
    assert conn.extra_dejson["from_email"]


def test_fs_default_is_the_landing_folder_on_the_shared_volume():
    path = compose_connections()["fs_default"].extra_dejson["path"]
    for service in [*AIRFLOW_SERVICES, "meter-stream"]:
        assert env_of(service)["MF_LANDING_DIR"] == path, service
        shared = [t for t in mounts_of(service) if path.startswith(t + "/")]
        assert shared, f"{service} does not mount the landing folder {path}"
        assert mounts_of(service)[shared[0]] == mounts_of("airflow-worker")[shared[0]]


def test_minio_init_creates_the_bucket_the_pipeline_writes_to():
    init = SVC["minio-init"]
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "mc mb --ignore-existing" in script and "MF_S3_BUCKET" in script
    assert env_of("minio-init")["MF_S3_BUCKET"] == env_of("airflow-worker")["MF_S3_BUCKET"]
    assert env_of("airflow-worker")["MF_S3_BUCKET"] == config.KNOBS["s3_bucket"].default
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


# --- Files, health, start order ---------------------------------------------------------------


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_dags_plugins_and_include_are_mounted_where_the_package_finds_them(service):
    mounts = mounts_of(service)
    for folder, target in REPO_MOUNTS.items():
        assert target in mounts, f"{service} does not mount {folder}/"
        assert Path(mounts[target]).name == folder and (REPO / folder).is_dir()
    # meterflow finds include/ next to plugins/ (meterflow.INCLUDE_DIR = REPO_DIR / "include").
    assert Path(REPO_MOUNTS["plugins"]).parent == Path(REPO_MOUNTS["include"]).parent
    assert "/opt/airflow/plugins" in env_of(service)["PYTHONPATH"].split(":")


def test_every_long_running_service_has_a_healthcheck():
    for name, service in SVC.items():
        if name in ONE_SHOT or "debug" in service.get("profiles", []):
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "always", name


def test_start_order_waits_for_health_and_for_the_one_shot_inits():
    for name, service in SVC.items():
        for target, dep in (service.get("depends_on") or {}).items():
            assert target in SVC, f"{name} depends on unknown service {target}"
            if dep["condition"] == "service_healthy":
                assert SVC[target].get("healthcheck"), f"{name} waits on {target}'s health"
            if dep["condition"] == "service_completed_successfully":
                assert target in ONE_SHOT, f"{target} is not a one-shot service"
    for service in [*AIRFLOW_COMPONENTS, "meter-stream"]:
        assert SVC[service]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )
    worker = SVC["airflow-worker"]["depends_on"]
    assert worker["minio-init"]["condition"] == "service_completed_successfully"
    assert worker["warehouse"]["condition"] == "service_healthy"


def test_init_migrates_the_metadata_db_and_the_warehouse():
    init = SVC["airflow-init"]
    script_path = "/opt/meterflow/airflow-init.sh"
    assert script_path in init["command"]
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(rf"COPY docker/airflow-init\.sh {re.escape(script_path)}", dockerfile)
    script = (REPO / "docker" / "airflow-init.sh").read_text()
    assert "airflow db migrate" in script
    assert "python -m meterflow.warehouse migrate" in script
    assert script.index("airflow db migrate") < script.index("meterflow.warehouse migrate")
    subprocess.run(["bash", "-n", str(REPO / "docker" / "airflow-init.sh")], check=True)
    initdb = mounts_of("warehouse")["/docker-entrypoint-initdb.d"]
    assert (REPO / initdb).is_dir() and list((REPO / initdb).glob("*.sql"))


def test_named_volumes_are_declared_and_used():
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name in SVC:
        for source in mounts_of(name).values():
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared


# --- The stream receiver, scaling, ports -------------------------------------------------


def test_the_stream_receiver_serves_on_port_8090():
    stream = SVC["meter-stream"]
    assert stream["command"] == ["python", "-m", "meterflow.stream"]
    env = env_of("meter-stream")
    assert env["MF_STREAM_PORT"] == "8090"
    assert any(p.endswith(":8090") for p in stream["ports"])
    assert "8090/health" in " ".join(stream["healthcheck"]["test"])
    assert env["MF_STREAM_TOKEN"]


def test_workers_scale_with_docker_compose_up_scale():
    """`--scale airflow-worker=N` fails when the service has a fixed name or host port."""
    worker = SVC["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert all("container_name" not in s for s in SVC.values())


def test_published_ports_are_distinct_and_bound_to_the_configured_address():
    host_ports = []
    for name, service in SVC.items():
        for spec in service.get("ports") or []:
            address, host, _container = spec.split(":")
            assert address == "127.0.0.1", f"{name} publishes beyond loopback by default"
            host_ports.append(int(host))
        for spec in RAW["services"][name].get("ports") or []:
            assert spec.startswith("${MF_BIND_ADDRESS:-127.0.0.1}:"), name
    assert len(host_ports) == len(set(host_ports))
    # The local stack (scripts/env.sh) keeps its ports: both can run on one machine,
    # except the UI (8080), which AIRFLOW_API_PORT moves.
    assert not {5433, 5001, 1025} & set(host_ports)


# --- Credentials and the .env file ----------------------------------------------------------

_SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$")


def _raw_envs():
    for name, service in RAW["services"].items():
        yield name, service.get("environment") or {}
    for name, block in RAW.items():
        if name.startswith("x-") and isinstance(block, dict) and "environment" in block:
            yield name, block["environment"]


def test_no_credential_is_hard_coded_only_defaulted_through_variables():
    for name, env in _raw_envs():
        for key, value in env.items():
            value = str(value)
            if _SECRETISH.search(key) and not key.endswith("_FILE"):
                assert value.startswith("${") and value.endswith("}"), f"{name}: {key}"
            for userinfo in re.findall(r"://[^/@\s:]*:([^@\s]*)@", value):
                assert not userinfo or userinfo.startswith("${"), (
                    f"{name}: literal password in {key}"
                )
            if value.lstrip().startswith("{"):
                password = json.loads(value).get("password")
                if password is not None:
                    assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]*\}", password), f"{name}: {key}"


def test_env_example_lists_every_variable_with_the_default_the_file_uses():
    example = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            example[key.strip()] = value.strip()
    used = variables(RAW)
    # $${HOSTNAME} etc. are escaped for the container's shell, not read by Compose.
    assert set(used) == set(example)
    for name, default in used.items():
        if default is not None:
            assert example[name] == default, (
                f"{name}: .env.example {example[name]!r} != {default!r}"
            )
    defaults = {k: v for k, v in used.items() if v is not None}
    assert interpolate(RAW, {**defaults, **SECRETS}) == COMPOSE
    # Copying .env.example gives no known secret: the required ones are empty there.
    assert {name: example[name] for name in REQUIRED} == dict.fromkeys(REQUIRED, "")


def test_compose_refuses_to_start_without_each_secret_naming_it():
    assert {name for name, default in variables(RAW).items() if default is None} >= REQUIRED
    for name in sorted(REQUIRED):
        for value in (None, ""):  # unset, or left empty as in .env.example
            env = {k: v for k, v in SECRETS.items() if k != name}
            if value is not None:
                env[name] = value
            with pytest.raises(KeyError, match=f"{name} is required: set {name} in .env"):
                interpolate(RAW, env)


def test_the_secrets_reach_the_components_that_use_them():
    assert (
        env_of("airflow-scheduler")["AIRFLOW__API_AUTH__JWT_SECRET"]
        == SECRETS["AIRFLOW_JWT_SECRET"]
    )
    assert (
        env_of("airflow-apiserver")["AIRFLOW__API__SECRET_KEY"] == SECRETS["AIRFLOW_API_SECRET_KEY"]
    )
    assert (
        env_of("airflow-init")["_AIRFLOW_WWW_USER_PASSWORD"]
        == SECRETS["_AIRFLOW_WWW_USER_PASSWORD"]
    )
    assert env_of("meter-stream")["MF_STREAM_TOKEN"] == SECRETS["MF_STREAM_TOKEN"]


def test_alerts_have_no_default_recipient_and_never_default_to_the_sponsor():
    env = env_of("airflow-worker")
    assert env["MF_ALERT_EMAIL"] == "" and env["MF_SPONSOR_EMAIL"]


def test_env_file_itself_is_git_ignored():
    assert re.search(r"^/?\.env$", (REPO / ".gitignore").read_text(), re.M)


_KNOWN_SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "volumes", "user", "depends_on",
    "healthcheck", "restart", "ports", "expose", "profiles",
}  # fmt: skip


def test_services_use_only_known_keys():
    """A typo ('healtcheck', 'depend_on') would be ignored by nobody but Compose: catch it."""
    for name, service in SVC.items():
        assert set(service) <= _KNOWN_SERVICE_KEYS, f"{name}: {set(service) - _KNOWN_SERVICE_KEYS}"
        hc = service.get("healthcheck") or {}
        assert set(hc) <= {"test", "interval", "timeout", "retries", "start_period"}, name


def test_the_guide_names_every_service_and_how_to_scale():
    guide = (REPO / "docs" / "docker-compose.md").read_text()
    for name in SVC:
        assert f"`{name}`" in guide, f"docs/docker-compose.md does not describe {name}"
    assert "--scale airflow-worker=" in guide
