"""README stays true: every setting and every make target it should name, it names."""

from __future__ import annotations

import re
from pathlib import Path

from meterflow import config

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [env for env, _var, _default, _doc in config.describe() if f"`{env}`" not in README]
    assert missing == []


def test_every_make_target_named_in_the_readme_exists():
    named = set(re.findall(r"`make ([a-z-]+)`", README))
    defined = set(re.findall(r"^([a-z-]+):", MAKEFILE, flags=re.M))
    assert named - defined == set()
    assert {"demo", "test", "up", "down", "services", "migrate", "bench", "lint"} <= named


def test_the_readme_leads_with_the_two_commands():
    first_block = README.split("```", 2)[1]
    assert "make demo" in README[: README.index("## Airflow")]
    assert "make test" in README[: README.index("## Airflow")]
    assert first_block  # the picture of the data path comes first


def test_every_dag_file_is_described_in_the_readme():
    for path in (REPO / "dags").glob("*.py"):
        assert f"`{path.stem}`" in README, f"README does not describe {path.stem}"
