"""Throughput of the small certified atlas (issue 19): runs per second per core, per teacher and
width, where the time goes, and the 2-worker scaling efficiency.

    python benchmarks/certified_atlas_throughput.py [--seeds 6] [--softplus-seeds 2]
        [--scaling-seeds 6] [--parts ab] [--out benchmarks/results/certified_atlas_throughput.json]

The spec is ``examples/specs/certified_atlas_small.toml`` with fewer seeds (every teacher and width
of it, the same run ids as the full spec's first seeds).

(a) **Where the time goes**, in one process pinned to one CPU (``_env.limit_threads(1)``): each run
    exactly as the sweep computes it (build, ``lossatlas.polish`` with the spec's settings, the
    explanation of the end point), timed by stage: gradient flow, Newton, symmetry-aware polish,
    classification, continuation (``EndPoint.timings``), explanation (``Explanation.wall_time``),
    and XLA compilation inside each (JAX's ``/jax/core/compile/backend_compile_duration`` and
    tracing events, summed over the run: a width's first run pays its shapes' compilations, later
    runs reuse them). Runs per second per core = 1 / mean run time, per teacher and width, with and
    without the compilation (the steady rate of a long sweep).
With ``--warm-cache DIR`` (a copy of a compilation cache that already holds the spec's shapes, e.g.
``~/.cache/lossatlas/jax`` after a sweep) both parts measure the steady state of a long sweep, whose
workers share one persistent cache; without it every shape is compiled first (a fresh machine).

(b) **Scaling**: the same reduced spec through ``lossatlas atlas`` in a fresh process with
    ``--workers 1`` and with ``--workers 2`` (each from an empty folder, start-up and compilation
    included, no report), efficiency ``T1 / (2 T2)``, with the CPU seconds of each.

The baseline of (b) is the same sweep on one worker, measured in the same run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env  # noqa: E402

SPEC = _env.REPO / "examples" / "specs" / "certified_atlas_small.toml"
SCHEMA = "lossatlas.benchmark.certified_atlas_throughput/1"


def reduced_spec_text(seeds: int, softplus_seeds: int) -> str:
    """The small spec's TOML with ``seeds`` per width (``softplus_seeds`` for the softplus teacher;
    0 leaves that teacher out)."""
    text = SPEC.read_text()
    doc = tomllib.loads(text)
    assert doc["run"]["seeds"] == 100 and any(t.get("seeds") == 10 for t in doc["teachers"])
    out, block = [], []
    for line in text.splitlines() + [""]:
        s = line.split("#")[0].strip()
        if s == "seeds = 100":
            line = f"seeds = {seeds}"
        elif s == "seeds = 10":
            line = f"seeds = {softplus_seeds}"
        if s == "[[teachers]]" or (s.startswith("[") and block):  # a [[teachers]] entry ends at the next table
            if block and not (softplus_seeds == 0 and any('activation = "softplus"' in b for b in block)):
                out += block
            block = []
        if s == "[[teachers]]" or block:
            block.append(line)
        else:
            out.append(line)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- (a)
def part_a(seeds: int, softplus_seeds: int, cache: str | None) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    if cache:  # as the sweep's workers: a persistent compilation cache (see _configure_worker_jax)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import jax.monitoring as jm

    from lossatlas.experiments import get_kind, load_spec
    from lossatlas.pipeline import explain, polish

    compile_s = collections.Counter()

    def listener(event, duration, **_):
        if event.startswith("/jax/core/compile/"):  # tracing, lowering and XLA compilation
            compile_s["total"] += float(duration)

    jm.register_event_duration_secs_listener(listener)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "spec.toml"
        path.write_text(reduced_spec_text(seeds, softplus_seeds))
        spec = load_spec(path)
    kind = get_kind(spec.kind)
    runs = kind.runs(spec)
    rows = []
    t_all = time.perf_counter()
    for i, r in enumerate(runs):
        compile_s.clear()
        t0 = time.perf_counter()
        ls, _ = kind.build(r)
        gmv = kind.global_min_value(r, ls)
        end = polish(ls, ls.ravel(), method="flow-newton", gtol=r.spec.run.gtol, t1=r.spec.run.t1,
                     handoff_tol=r.spec.run.handoff_tol, flow_solver="tsit5", global_min_value=gmv)
        c_polish = compile_s["total"]
        t1 = time.perf_counter()
        ex_kind = None
        if end.label is not None and end.label.value != "not_critical":  # as the sweep's end_fields
            ex = explain(ls, end.theta, end=end, global_min_value=gmv)
            ex_kind = None if ex.kind is None else ex.kind.value
        t2 = time.perf_counter()
        tm = end.timings
        rows.append({"teacher": r.teacher, "width": int(r.width), "seed": int(r.seed), "label": end.label.value,
                     "explanation": ex_kind, "total_s": t2 - t0, "polish_s": t1 - t0, "explain_s": t2 - t1,
                     "flow_s": tm.flow, "newton_s": tm.newton, "symmetry_s": tm.symmetry, "classify_s": tm.classify,
                     "continuation_s": tm.continuation, "compile_s": compile_s["total"],
                     "compile_polish_s": c_polish, "compile_explain_s": compile_s["total"] - c_polish})
        print(f"(a) {i + 1}/{len(runs)} {r.teacher} m={r.width} seed {r.seed}: {t2 - t0:.2f} s "
              f"(compile {compile_s['total']:.2f} s) {end.label.value} / {ex_kind}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_all
    groups = collections.defaultdict(list)
    for row in rows:
        groups[(row["teacher"], row["width"])].append(row)
    per = []
    for (teacher, width), rs in groups.items():
        mean = statistics.fmean(x["total_s"] for x in rs)
        steady = statistics.fmean(x["total_s"] - x["compile_s"] for x in rs)
        per.append({"teacher": teacher, "width": width, "runs": len(rs), "mean_run_s": mean,
                    "median_run_s": statistics.median(x["total_s"] for x in rs),
                    "runs_per_s_per_core": 1.0 / mean, "steady_runs_per_s_per_core": 1.0 / max(steady, 1e-9),
                    **{f"share_{k}": sum(x[f"{k}_s"] for x in rs) / sum(x["total_s"] for x in rs)
                       for k in ("flow", "newton", "symmetry", "classify", "explain", "compile")}})
    keys = ("flow", "newton", "symmetry", "classify", "continuation", "explain", "compile")
    total = sum(x["total_s"] for x in rows)
    return {"runs": len(rows), "seeds": seeds, "softplus_seeds": softplus_seeds, "wall_s": wall,
            "seconds_by_stage": {k: sum(x[f"{k}_s"] for x in rows) for k in keys} | {"total": total},
            "share_by_stage": {k: sum(x[f"{k}_s"] for x in rows) / total for k in keys},
            "note": ("stages overlap: compile time is counted inside the stage that compiled; continuation's "
                     "Newton runs and reductions also count in newton and symmetry; flow, newton, symmetry and "
                     "classify are polish's own timings, explain is the explanation"),
            "per_teacher_width": sorted(per, key=lambda x: (x["teacher"], x["width"])), "rows": rows}


# --------------------------------------------------------------------------- (b)
def cache_copy(warm: str | None, d: str) -> str:
    """A fresh compilation cache in ``d``: empty, or a copy of `warm`."""
    dst = Path(d) / "jax-cache"
    if warm:
        shutil.copytree(warm, dst)
    else:
        dst.mkdir()
    return str(dst)


def sweep(text: str, workers: int, warm: str | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "spec.toml"
        spec.write_text(text)
        env = {**os.environ, "LOSSATLAS_JAX_CACHE": cache_copy(warm, d)}
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lossatlas", "atlas", str(spec), "--out", str(Path(d) / "out"),
                        "--workers", str(workers), "--no-report"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def part_b(seeds: int, softplus_seeds: int, warm: str | None) -> dict:
    text = reduced_spec_text(seeds, softplus_seeds)
    t1, c1 = sweep(text, 1, warm)
    print(f"(b) one worker: {t1:.0f} s ({c1:.0f} CPU-s)", file=sys.stderr, flush=True)
    t2, c2 = sweep(text, 2, warm)
    print(f"(b) two workers: {t2:.0f} s ({c2:.0f} CPU-s)", file=sys.stderr, flush=True)
    n_runs = 15 * seeds + 5 * softplus_seeds  # 3 erf teachers and the softplus one, 5 widths each
    return {"runs": n_runs, "compilation_cache": "warm copy" if warm else "empty", "seeds": seeds,
            "softplus_seeds": softplus_seeds, "one_worker_s": t1, "two_workers_s": t2,
            "one_worker_cpu_s": c1, "two_workers_cpu_s": c2,
            "scaling_efficiency": t1 / (2 * t2), "runs_per_s_one_worker": n_runs / t1,
            "runs_per_s_two_workers": n_runs / t2,
            "full_spec_estimate_two_workers_s": t2 / n_runs * 1550 if seeds == softplus_seeds * 10 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=6, help="seeds per width of the erf teachers in (a)")
    ap.add_argument("--softplus-seeds", type=int, default=2, help="seeds per width of the softplus teacher in (a)")
    ap.add_argument("--scaling-seeds", type=int, default=6, help="seeds per width of the erf teachers in (b)")
    ap.add_argument("--scaling-softplus-seeds", type=int, default=1)
    ap.add_argument("--parts", default="ab")
    ap.add_argument("--warm-cache", default=None,
                    help="a compilation cache to start from (copied; e.g. ~/.cache/lossatlas/jax after a sweep of "
                         "the spec): measures the steady state of a long sweep; default: empty (compilation included)")
    ap.add_argument("--out", default=str(_env.REPO / "benchmarks" / "results" / "certified_atlas_throughput.json"))
    args = ap.parse_args()
    doc = {"benchmark": SCHEMA, "spec": str(SPEC.relative_to(_env.REPO))}
    old = Path(args.out)
    if old.exists():  # parts not run this time are kept from the existing file, said so
        prev = json.loads(old.read_text())
        for part, key in (("a", "time_split"), ("b", "scaling")):
            if part not in args.parts and key in prev:
                doc[key] = {**prev[key], "carried_over_from_earlier_run": True}
    if "b" in args.parts:  # first, in fresh processes, before this process pins itself to one CPU
        doc["scaling"] = part_b(args.scaling_seeds, args.scaling_softplus_seeds, args.warm_cache)
    if "a" in args.parts:
        doc["threads"] = _env.limit_threads(1)
        with tempfile.TemporaryDirectory() as d:
            doc["time_split"] = part_a(args.seeds, args.softplus_seeds, cache_copy(args.warm_cache, d))
            doc["time_split"]["compilation_cache"] = "warm copy" if args.warm_cache else "empty"
    doc["environment"] = _env.environment()
    print(_env.write_json(args.out, doc))


if __name__ == "__main__":
    main()
