"""ReLU critical points: the default ``lossatlas find`` (``la.polish``) against PyTorch float64 L-BFGS.

Usage::

    python benchmarks/relu_find.py [--starts 20] [--max-time 30] [--threads 1]
        [--out benchmarks/results/relu_find.json] [--figure docs/images/relu_find.png]
    python benchmarks/relu_find.py --plot benchmarks/results/relu_find.json   # redraw the figure only

Problem: a 10→8→1 relu net with biases (97 parameters) on two scikit-learn regression sets,
X and y standardised, loss ``1/(2N) Σ (f − y)²``: ``load_diabetes`` (442 × 10) and
``make_friedman1`` (500 × 10, noise 0.1, ``random_state=0``). Starts: 20 random initialisations
(``W ~ N(0, 1/fan_in)``, ``b ~ N(0, 0.01)``, seed 0), and the user story of issue 18 — the same
net trained by PyTorch Adam first (2000 full-batch steps at lr 1e-2 from the first
``--adam-starts`` random starts).

lossatlas: ``la.polish(ls, θ₀, max_time=--max-time)``, exactly what ``lossatlas find`` runs
(for relu: ``PatternNewton``, no gradient flow; ``gtol = 1e-12``), timed per solve after one
untimed solve (compilation); wall and process CPU seconds. A solve *reaches the target* when it
ends converged with ``||∇L||_∞ ≤ 1e-10`` or with status ``kink`` and the exact Clarke
stationarity measure (``∞``-norm of the minimal element of the convex hull of the one-sided
gradients, recomputed here with ``la.solvers.clarke_measure``) ``≤ 1e-10``.

Baseline: ``torch.optim.LBFGS`` (float64, ``line_search_fn="strong_wolfe"``, history 50,
``tolerance_grad=1e-14``, ``tolerance_change=0``), full batch, from the same starts, in its own
process with ``torch.set_num_threads(1)``, up to ``--max-time`` seconds or ``--lbfgs-iters``
iterations per start: its best ``||∇L||_∞`` (autograd's gradient, the one-sided gradient at a
kink), when it got there, and the Clarke measure at its final point (computed by lossatlas).

Threads: XLA, BLAS and torch are limited to ``--threads`` (default 1) and the process is pinned
to that many CPUs (``_env.limit_threads``), so both sides run on one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _env  # noqa: E402  (imports neither numpy nor JAX nor torch)

SCHEMA = "lossatlas.benchmark.relu_find/2"
TARGET = 1e-10
WIDTHS = (10, 8, 1)


# --------------------------------------------------------------------------- data and starts
def datasets():
    from sklearn.datasets import load_diabetes, make_friedman1

    out = {}
    X, y = load_diabetes(return_X_y=True)
    out["diabetes"] = (X, y)
    X, y = make_friedman1(n_samples=500, n_features=10, noise=0.1, random_state=0)
    out["friedman1"] = (X, y)
    return {k: ((X - X.mean(0)) / X.std(0), ((y - y.mean()) / y.std())[:, None]) for k, (X, y) in out.items()}


def starts(n, seed=0):
    import numpy as np

    r = np.random.default_rng(seed)
    th = []
    for _ in range(n):
        W1 = r.standard_normal((8, 10)) / np.sqrt(10)
        b1 = 0.1 * r.standard_normal(8)
        W2 = r.standard_normal((1, 8)) / np.sqrt(8)
        b2 = 0.1 * r.standard_normal(1)
        th.append(np.concatenate([W1.ravel(), b1, W2.ravel(), b2]))
    return np.array(th)


def _torch_net(th):
    import torch

    m = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(th[:80].reshape(8, 10)))
        m[0].bias.copy_(torch.tensor(th[80:88]))
        m[2].weight.copy_(torch.tensor(th[88:96].reshape(1, 8)))
        m[2].bias.copy_(torch.tensor(th[96:97]))
    return m


def _flat(m):
    import numpy as np

    return np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])


# --------------------------------------------------------------------------- the torch worker
def torch_worker(path_in, path_out, max_iter, max_time, adam_steps):
    """L-BFGS from every start (and, with `adam_steps`, the Adam starts it first makes)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    d = np.load(path_in)
    X, Y, T = torch.tensor(d["X"]), torch.tensor(d["Y"]), d["starts"]

    def loss_of(m):
        return ((m(X) - Y) ** 2).sum() / (2 * X.shape[0])

    if adam_steps:  # the user story: a network trained by Adam first
        out = []
        for th in T:
            m = _torch_net(th)
            opt = torch.optim.Adam(m.parameters(), lr=1e-2)
            for _ in range(adam_steps):
                opt.zero_grad()
                loss_of(m).backward()
                opt.step()
            out.append(_flat(m))
        np.save(path_out, np.array(out))
        return
    rows, finals = [], []
    for th in T:
        m = _torch_net(th)
        opt = torch.optim.LBFGS(m.parameters(), lr=1, max_iter=max_iter, tolerance_grad=1e-14,
                                tolerance_change=0, history_size=50, line_search_fn="strong_wolfe")
        best = {"g": np.inf, "t": 0.0, "evals": 0}
        t0 = time.perf_counter()

        def closure(m=m, opt=opt, best=best, t0=t0):
            opt.zero_grad()
            loss = loss_of(m)
            loss.backward()
            gi = max(float(p.grad.abs().max()) for p in m.parameters())
            best["evals"] += 1
            if gi < best["g"]:
                best["g"], best["t"] = gi, time.perf_counter() - t0
            return loss

        while time.perf_counter() - t0 < max_time:
            opt.step(closure)
            if best["g"] <= TARGET or opt.state[opt._params[0]].get("n_iter", 0) >= max_iter:
                break
            if opt.state[opt._params[0]].get("n_iter", 0) == 0:
                break
        with torch.no_grad():
            final_loss = float(loss_of(m))
        rows.append({"best_grad_inf": best["g"], "seconds_to_best": best["t"],
                     "seconds": time.perf_counter() - t0, "iterations": int(opt.state[opt._params[0]].get("n_iter", 0)),
                     "loss_evaluations": best["evals"], "final_loss": final_loss})
        finals.append(_flat(m))
    Path(path_out).write_text(json.dumps(rows))
    np.save(str(path_out) + ".npy", np.array(finals))


def run_torch(X, Y, T, args, adam_steps=0):
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        pin, pout = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(pin, X=X, Y=Y, starts=T)
        dest = Path(tmp) / "adam.npy" if adam_steps else pout
        cmd = [sys.executable, __file__, "--torch-worker", str(pin), str(dest),
               "--max-time", str(args.max_time), "--lbfgs-iters", str(args.lbfgs_iters),
               "--adam-steps", str(adam_steps)]
        subprocess.run(cmd, check=True)
        if adam_steps:
            return np.load(Path(tmp) / "adam.npy")
        return json.loads(pout.read_text()), np.load(str(pout) + ".npy")


# --------------------------------------------------------------------------- lossatlas
def solve_all(ls, T, max_time):
    import lossatlas as la
    from lossatlas.solvers._pattern import clarke_measure  # the exact measure (not re-exported)

    rows = []
    for th in T:
        t, c = time.perf_counter(), time.process_time()
        end = la.polish(ls, th, max_time=max_time)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        cm = clarke_measure(ls, end.theta)
        clarke = cm["clarke_stationarity_inf"]
        reached = bool((end.converged and end.grad_norm_inf <= TARGET)
                       or (end.result.name == "kink" and clarke is not None and clarke <= TARGET))
        rows.append({"status": end.result.name, "converged": bool(end.converged), "reached_target": reached,
                     "grad_norm_inf": end.grad_norm_inf, "clarke_stationarity_inf": clarke,
                     "kink_pairs": len(cm["kink_pairs"]), "min_abs_preactivation": cm["min_abs_preactivation"],
                     "loss": end.loss, "label": end.classification.label.value if end.classification else None,
                     "seconds": dt, "cpu_seconds": dc, "steps": int(end.solver_stats.num_steps),
                     "polish_method": end.method.value, "distance_moved": end.distance})
        print(f"  lossatlas {rows[-1]['status']:18s} reached={reached!s:5s} |g|={end.grad_norm_inf:.1e} "
              f"clarke={clarke if clarke is None else f'{clarke:.1e}'} L={end.loss:.6f} {dt:5.2f}s "
              f"({dc:5.2f} CPU-s) steps={rows[-1]['steps']}", flush=True)
    return rows


def summary(rows, trows, tclarke):
    med = statistics.median
    sec = [r["seconds"] for r in rows]
    cpu = [r["cpu_seconds"] for r in rows]
    status = {}
    for r in rows:
        status[r["status"]] = status.get(r["status"], 0) + 1
    return {
        "lossatlas": {
            "starts": len(rows),
            "reached_target": sum(r["reached_target"] for r in rows),
            "fraction_reached_target": sum(r["reached_target"] for r in rows) / len(rows),
            "converged_smooth": sum(r["converged"] for r in rows),
            "certified_kink": sum(r["reached_target"] and r["status"] == "kink" for r in rows),
            "status_counts": status,
            "median_seconds": med(sec), "max_seconds": max(sec), "mean_seconds": statistics.fmean(sec),
            "median_cpu_seconds": med(cpu), "max_cpu_seconds": max(cpu),
            "median_seconds_reached": med([r["seconds"] for r in rows if r["reached_target"]] or [float("nan")]),
            "median_loss": med([r["loss"] for r in rows]),
        },
        "torch_lbfgs": {
            "median_seconds": med([r["seconds"] for r in trows]),
            "median_seconds_to_best": med([r["seconds_to_best"] for r in trows]),
            "median_best_grad_inf": med([r["best_grad_inf"] for r in trows]),
            "min_best_grad_inf": min(r["best_grad_inf"] for r in trows),
            "reached_target": sum(r["best_grad_inf"] <= TARGET for r in trows),
            "median_final_loss": med([r["final_loss"] for r in trows]),
            "median_clarke_at_final": med([c for c in tclarke if c is not None] or [float("nan")]),
            "min_clarke_at_final": min([c for c in tclarke if c is not None] or [float("nan")]),
        },
    }


# --------------------------------------------------------------------------- figure
def plot(doc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(doc["cases"])
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.8), sharey=True, sharex=True)
    for ax, name in zip(axes, cases, strict=True):
        case = doc["cases"][name]
        la_x = [r["seconds"] for r in case["lossatlas_rows"]]
        la_y = [max(r["clarke_stationarity_inf"] if r["clarke_stationarity_inf"] is not None
                    else r["grad_norm_inf"], 1e-17) for r in case["lossatlas_rows"]]
        ok = [r["reached_target"] for r in case["lossatlas_rows"]]
        ax.scatter([x for x, o in zip(la_x, ok, strict=True) if o], [y for y, o in zip(la_y, ok, strict=True) if o],
                   marker="o", color="C0", label="lossatlas find: Clarke measure")
        ax.scatter([x for x, o in zip(la_x, ok, strict=True) if not o],
                   [y for y, o in zip(la_y, ok, strict=True) if not o],
                   marker="x", color="C0", label="lossatlas: escape to infinity / not reached")
        t_x = [r["seconds_to_best"] for r in case["torch_rows"]]
        ax.scatter(t_x, [r["best_grad_inf"] for r in case["torch_rows"]], marker="s", color="C3",
                   facecolors="none", label="L-BFGS: best ||∇L||∞")
        ax.scatter(t_x, [max(c, 1e-17) if c is not None else float("nan") for c in case["torch_clarke_at_final"]],
                   marker="^", color="C3", label="L-BFGS end: Clarke measure")
        ax.axhline(TARGET, color="gray", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlim(0.02, 40)
        ax.set_title(f"{name} ({case['n_samples']} samples, {len(case['lossatlas_rows'])} starts)")
        ax.set_xlabel("seconds (1 core); L-BFGS: to its best point")
    axes[0].set_ylabel("stationarity at the end")
    axes[0].legend(fontsize=7, loc="center left")
    fig.suptitle("10→8→1 relu: lossatlas find vs PyTorch float64 L-BFGS, same starts", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(_env.REPO / "benchmarks/results/relu_find.json"))
    ap.add_argument("--figure", default=str(_env.REPO / "docs/images/relu_find.png"))
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--adam-starts", type=int, default=5)
    ap.add_argument("--max-time", type=float, default=30.0, help="seconds per solve (both)")
    ap.add_argument("--lbfgs-iters", type=int, default=5000)
    ap.add_argument("--adam-steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plot", help="redraw the figure from this JSON and exit")
    ap.add_argument("--torch-worker", nargs=2)
    args = ap.parse_args()
    if args.plot:
        return plot(json.loads(Path(args.plot).read_text()), args.figure)
    threads = _env.limit_threads(args.threads)
    if args.torch_worker:
        return torch_worker(*args.torch_worker, args.lbfgs_iters, args.max_time, args.adam_steps)
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import lossatlas as la
    from lossatlas.solvers._pattern import clarke_measure  # the exact measure (not re-exported)

    env = _env.environment()  # load average at the start
    sets = datasets()
    T = starts(args.starts)
    doc = {"benchmark": "relu_find", "schema": SCHEMA, "target_grad_inf": TARGET,
           "net": "10-8-1 relu with biases (97 parameters), loss 1/(2N) sum (f - y)^2, X and y standardised",
           "lossatlas": "la.polish(ls, theta0, max_time) = lossatlas find (PatternNewton, gtol 1e-12)",
           "baseline": "torch.optim.LBFGS float64, strong_wolfe, history 50, tolerance_grad 1e-14, "
                       "set_num_threads(1), own process",
           "max_time_per_solve": args.max_time, "threads": threads, "cases": {}}
    cases = [(name, X, Y, T) for name, (X, Y) in sets.items()]
    if args.adam_starts:
        X, Y = sets["diabetes"]
        adam = run_torch(X, Y, T[: args.adam_starts], args, adam_steps=args.adam_steps)
        cases.append(("diabetes_adam", X, Y, adam))
    for name, X, Y, starts_ in cases:
        print(name, flush=True)
        ls = la.Landscape(la.MLP((np.zeros((8, 10)), np.zeros((1, 8))), (np.zeros(8), np.zeros(1)), "relu"),
                          la.Dataset(X, Y))
        t = time.perf_counter()
        la.polish(ls, starts_[0], max_time=args.max_time)  # compilation, outside the timings
        first = time.perf_counter() - t
        rows = solve_all(ls, starts_, args.max_time)
        trows, tfinal = run_torch(X, Y, starts_, args)
        tclarke = [clarke_measure(ls, th)["clarke_stationarity_inf"] for th in tfinal]
        for r, c in zip(trows, tclarke, strict=True):
            print(f"  L-BFGS best |g|={r['best_grad_inf']:.1e} at {r['seconds_to_best']:.2f}s "
                  f"(ran {r['seconds']:.2f}s) L={r['final_loss']:.6f} clarke at end={c}", flush=True)
        doc["cases"][name] = {"n_samples": int(X.shape[0]), "starts": "adam" if name.endswith("adam") else "random",
                              "first_call_seconds": first, **summary(rows, trows, tclarke),
                              "lossatlas_rows": rows, "torch_rows": trows, "torch_clarke_at_final": tclarke}
    doc["environment"] = env
    doc["environment"]["load_average_end"] = _env.load_average()
    _env.write_json(args.out, doc)
    if args.figure:
        plot(doc, args.figure)


if __name__ == "__main__":
    main()
