"""Run the benchmarks: `python -m bench [name ...]` (make bench runs them all).

Each module bench/bench_<name>.py defines ``run() -> list[Result]``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench.common import report


def main(argv: list[str]) -> int:
    names = sorted(
        m.name[6:] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    chosen = argv or names
    unknown = set(chosen) - set(names)
    if unknown:
        print(f"unknown benchmarks {sorted(unknown)}; have {names}", file=sys.stderr)
        return 2
    results = []
    for name in chosen:
        print(f"== bench {name}", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        results.extend(module.run())
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
