"""Atlas sweep throughput: one versus two worker processes, and vmap batching on versus off.

Baselines measured in the same run: (a) the same sweep with one worker (scaling efficiency
``T1 / (2 T2)``, target >= 0.8 on two cores; the CPU seconds of each sweep are recorded, since
one in-process worker already keeps more than one core partly busy), (b) the same sweep with
``run.batch = true`` (flows of one width vmapped together: seeds per second with ``vmap``). The sweep is the built-in
atlas (erf teacher r* = 3, d = 4, widths 3-6, population loss, 20 seeds, t1 = 1e5). Every sweep
starts from an empty folder in a fresh process, so start-up and compilation are included, as a
user would see them (with two workers, the workers share a persistent compilation cache).

    python benchmarks/atlas_throughput.py [--seeds 20] [--long-seeds 60] [--out FILE.json]

The scaling efficiency is reported twice: on the default-sized sweep (80 runs, about a minute,
where worker start-up and per-process compilation weigh heavily) and on a throughput sweep of
the same shapes with 60 seeds per width (240 runs), long enough to measure the steady rate.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import REPO, environment, write_json  # noqa: E402

SPEC = """
[experiment]
name = "throughput"
[teacher]
activation = "erf"
width = 3
input_dim = 4
[student]
widths = [3, 4, 5, 6]
[run]
seeds = {seeds}
t1 = 1e5
batch = {batch}
batch_size = {seeds}
[report]
path = false
"""


CPU: dict = {}


def sweep(seeds: int, workers: int, batch: bool) -> float:
    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "spec.toml"
        spec.write_text(SPEC.format(seeds=seeds, batch=str(batch).lower()))
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lossatlas", "atlas", str(spec), "--out", str(Path(d) / "out"),
                        "--workers", str(workers), "--no-report"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=REPO)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        CPU[(workers, batch, seeds)] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds per width of the default-sized sweep")
    ap.add_argument("--long-seeds", type=int, default=60,
                    help="seeds per width of the throughput sweep (long enough to amortise start-up)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "atlas_throughput.json"))
    args = ap.parse_args()
    runs = 4 * args.seeds
    t1 = sweep(args.seeds, 1, False)
    t2 = sweep(args.seeds, 2, False)
    t_batch = sweep(args.seeds, 1, True)
    long_runs = 4 * args.long_seeds
    t1_long = sweep(args.long_seeds, 1, False)
    t2_long = sweep(args.long_seeds, 2, False)
    doc = {
        "benchmark": "atlas_throughput",
        "runs_per_sweep": runs,
        "spec": "the built-in default's shape (run.batch = false, one flow per run) for the scaling; "
        "run.batch = true with batch_size = seeds for the batching comparison",
        "throughput_sweep": {
            "runs": long_runs,
            "seeds_per_width": args.long_seeds,
            "one_worker_s": t1_long,
            "two_workers_s": t2_long,
            "one_worker_cpu_s": CPU[(1, False, args.long_seeds)],
            "two_workers_cpu_s": CPU[(2, False, args.long_seeds)],
            "runs_per_s_one_worker": long_runs / t1_long,
            "runs_per_s_two_workers": long_runs / t2_long,
            "scaling_efficiency": t1_long / (2 * t2_long),
        },
        "scaling_efficiency": t1_long / (2 * t2_long),
        "default_sweep_scaling_efficiency": t1 / (2 * t2),
        "one_worker_s": t1,
        "two_workers_s": t2,
        "one_worker_cpu_s": CPU[(1, False, args.seeds)],
        "two_workers_cpu_s": CPU[(2, False, args.seeds)],
        "one_worker_cores_used": CPU[(1, False, args.seeds)] / t1,
        "runs_per_s_one_worker": runs / t1,
        "runs_per_s_two_workers": runs / t2,
        "batched_seeds_per_s": runs / t_batch,
        "unbatched_seeds_per_s": runs / t1,
        "batching_speedup": t1 / t_batch,
        "environment": environment(),
    }
    write_json(args.out, doc)
    for k, v in doc.items():
        if k != "environment":
            print(f"{k:34s} {v:.4g}" if isinstance(v, float) else f"{k:34s} {v}")


if __name__ == "__main__":
    main()
