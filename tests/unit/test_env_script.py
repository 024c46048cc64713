"""scripts/env.sh is sourced by every make target and often by hand first: sourcing it twice
must leave the Airflow connections it sets as they were, valid JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONNECTIONS = ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SMTP_DEFAULT", "AIRFLOW_CONN_FS_DEFAULT")


def _connections_after(times: int) -> list[str]:
    sources = "source scripts/env.sh >/dev/null; " * times
    shows = "; ".join(f'printf "%s\\n" "${name}"' for name in CONNECTIONS)
    env = {"HOME": "/root", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", "-c", sources + shows], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_sourcing_env_twice_leaves_the_airflow_connections_valid_and_unchanged():
    once, twice = _connections_after(1), _connections_after(2)
    assert twice == once
    assert [json.loads(value)["conn_type"] for value in twice] == ["aws", "smtp", "fs"]
