"""Kill-and-resume drill (issue 21): ``kill -9`` a sweep at random moments, resume, compare.

Usage::

    python benchmarks/kill_resume_drill.py [--kills 10] [--seed 0] [--workers 1] [--executors]
                                           [--out benchmarks/results/kill_resume_drill.json]

What is done: a clean reference sweep of a tiny spec (teacher_student, erf, r* = 2, students of
widths 2 and 3, three seeds each: 6 runs) runs to completion. Then, in another folder, the same
sweep is started `--kills` times and killed with SIGKILL (the ``lossatlas atlas`` process only; its
worker processes notice their parent's death and exit), alternately after a random time up to half
the reference's wall time and once one or two more runs are on disk (plus up to 3 s); a sweep that
finishes before its kill is compared and started over; a final run completes the last one. Its
``results.parquet`` is compared with the reference's row by row, bit for bit (all columns but
the wall-clock ones ``wall_time`` and ``flow_time``). With `--executors`, the reference is also
recomputed with ``--workers 2`` and with ``--executor dask --workers 2`` and compared the same
way (issue 21 item 3).

Baseline: the reference sweep itself; the drill passes when every row is identical, no temporary
file survives and the final summary counts every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """
[experiment]
name = "drill"
[teacher]
activation = "erf"
width = 2
input_dim = 2
[student]
widths = [2, 3]
[run]
seeds = 3
t1 = 1e3
[report]
slice_points = 5
path = false
"""
TIMING = ("wall_time", "flow_time")
LOSSATLAS = [str(Path(sys.executable).parent / "lossatlas")]


def sweep(spec: Path, out: Path, *extra: str) -> dict:
    r = subprocess.run([*LOSSATLAS, "atlas", str(spec), "--out", str(out), "--no-report", "--json", *extra],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"sweep failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)["sweep"]


def table(out: Path):
    import pandas as pd

    df = pd.read_parquet(out / "results.parquet")
    return df.drop(columns=[c for c in TIMING if c in df.columns])


def identical_rows(a, b) -> int:
    """Rows of `a` equal to the row of `b` with the same run id, every column bit for bit."""
    import numpy as np

    if list(a.columns) != list(b.columns):
        return 0
    b = b.set_index("run_id", drop=False)
    n = 0
    for _, row in a.iterrows():
        if row["run_id"] not in b.index:
            continue
        other = b.loc[row["run_id"]]
        same = all((x is y) or (x == y) or (isinstance(x, float) and isinstance(y, float) and np.isnan(x)
                                            and np.isnan(y)) for x, y in zip(row.values, other.values, strict=True))
        n += bool(same)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executors", action="store_true", help="also compare --workers 2 and dask")
    ap.add_argument("--out", default="benchmarks/results/kill_resume_drill.json")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="lossatlas-drill-"))
    spec = work / "drill.toml"
    spec.write_text(SPEC)

    t0 = time.perf_counter()
    ref = sweep(spec, work / "ref")
    t_ref = time.perf_counter() - t0
    print(f"reference: {ref['total']} runs in {t_ref:.1f} s")

    drill = work / "drill"
    killed = finished_first = restarts = 0
    done_at_kill = []
    while killed < args.kills and killed + finished_first < 3 * args.kills:
        p = subprocess.Popen([*LOSSATLAS, "atlas", str(spec), "--out", str(drill), "--no-report",
                              "--workers", str(args.workers)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # odd kills at a random time, even kills once a random number of new records exist
        # (plus up to 3 s), so that kills land both during start-up and mid-sweep
        if killed % 2 == 0:
            time.sleep(rng.uniform(0.3, 0.5 * t_ref))
        else:
            have = len(list((drill / "runs").glob("*.json"))) if (drill / "runs").is_dir() else 0
            target = min(ref["total"], have + rng.randint(1, 2))
            while p.poll() is None and (not (drill / "runs").is_dir()
                                        or len(list((drill / "runs").glob("*.json"))) < target):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 3.0))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        time.sleep(1.0)  # orphaned workers see their parent gone within 0.5 s and exit
        n_done = len(list((drill / "runs").glob("*.json"))) if (drill / "runs").is_dir() else 0
        if p.returncode == -signal.SIGKILL:
            killed += 1
            done_at_kill.append(n_done)
            print(f"kill {killed}: {n_done} run records on disk")
        else:  # the sweep finished first: check it, then start over in a fresh folder
            finished_first += 1
            n = identical_rows(table(drill), table(work / "ref"))
            print(f"sweep finished before its kill: rows identical {n}/{ref['total']}; starting over")
            if n != ref["total"]:
                raise SystemExit("a resumed sweep differs from the reference")
            shutil.rmtree(drill)
            restarts += 1
    final = sweep(spec, drill, "--workers", str(args.workers))
    a, b = table(drill), table(work / "ref")
    same = identical_rows(a, b)
    leftovers = [str(p) for p in drill.rglob(".*.tmp*")]
    quarantine = sorted(str(p) for p in (drill / "quarantine").glob("*/*.json"))
    doc = {"schema": "lossatlas.benchmark.kill_resume_drill/1", "benchmark": "kill_resume_drill",
           "kills_requested": args.kills, "killed": killed,
           "finished_before_kill": finished_first, "restarts": restarts,
           "records_on_disk_after_each_kill": done_at_kill,
           "final_summary": final, "rows": len(a), "reference_rows": len(b), "rows_identical": same,
           "temporaries_left": leftovers, "quarantined_files": quarantine, "workers": args.workers}
    print(f"kills survived: {killed} (+{finished_first} runs that finished first); final run: "
          f"{final['computed']} computed, {final['skipped']} resumed, {final['failed']} failed, "
          f"{len(final['quarantined'])} quarantined; rows identical to the reference: {same}/{len(b)}; "
          f"temporaries left: {len(leftovers)}")
    if args.executors:
        doc["executors"] = {}
        for name, extra in (("local, 2 workers", ("--workers", "2")),
                            ("dask, 2 workers", ("--executor", "dask", "--workers", "2"))):
            folder = work / name.replace(", ", "-").replace(" ", "")
            sweep(spec, folder, *extra)
            n = identical_rows(table(folder), b)
            doc["executors"][name] = n
            print(f"{name}: rows identical to --workers 1: {n}/{len(b)}")
    from _env import environment, write_json

    doc["environment"] = environment()
    write_json(args.out, doc)
    ok = same == len(b) == len(a) and not leftovers and all(v == len(b) for v in doc.get("executors", {}).values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
