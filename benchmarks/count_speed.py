"""Speed of ``lossatlas count`` (exact symmetry counts) against the wide width m.

Usage::

    python benchmarks/count_speed.py [--out benchmarks/results/count_speed.json]

What is measured: the wall time of :func:`lossatlas.symmetry.symmetry_counts` (T, G,
T_zero_loss and the ratio, exact integers) at r = 7 for m = 250, 500, 1000, 2000, each the best
of three calls. Baseline: the command's limit ``MAX_COUNT_M`` (m = 2000), chosen so that the
largest accepted input answers in seconds; this used to be a wall-clock assertion in
``tests/test_symmetry_cli.py`` (< 1 s at m = 1000), flaky on a busy machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import environment, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/count_speed.json")
    args = ap.parse_args()
    from lossatlas.cli._symmetry import MAX_COUNT_M
    from lossatlas.symmetry import symmetry_counts

    rows = []
    for m in (250, 500, 1000, MAX_COUNT_M):
        best = min(_timed(symmetry_counts, 7, m) for _ in range(3))
        rows.append({"r": 7, "m": m, "seconds": best})
        print(f"r = 7, m = {m:5d}: {best:.3f} s")
    write_json(args.out, {"schema": "lossatlas.benchmark.count_speed/1", "benchmark": "count_speed",
                          "limit_m": MAX_COUNT_M, "rows": rows,
                          "environment": environment()})


def _timed(fn, *a) -> float:
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
