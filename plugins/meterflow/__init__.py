"""meterflow: the shared package behind the smart-meter DAGs (plugins/ is on Airflow's path)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent
INCLUDE_DIR = REPO_DIR / "include"
SQL_DIR = INCLUDE_DIR / "sql"
EXPECTATIONS_DIR = INCLUDE_DIR / "expectations"
CONFIG_DIR = INCLUDE_DIR / "config"

__all__ = ["CONFIG_DIR", "EXPECTATIONS_DIR", "INCLUDE_DIR", "PACKAGE_DIR", "REPO_DIR", "SQL_DIR"]
