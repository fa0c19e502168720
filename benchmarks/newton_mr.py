"""Matrix-free Newton-MR against dense Newton and against PyTorch L-BFGS, up to 85 002 parameters.

Usage::

    python benchmarks/newton_mr.py [--quick] [--parts abc] [--out benchmarks/results/newton_mr.json]
    python benchmarks/newton_mr.py --parts d --threads 2   # the command line, both cores

Losses: the DESIGN.md loss ``1/(2N) Σ ||f(x_i) − y_i||²`` plus ``λ Σ_l (||W_l||² + ||b_l||²)``;
tanh MLPs with biases, seeded Xavier initialisation, float64. Digits: scikit-learn's
``load_digits`` (1797 × 64), inputs standardised per pixel (constant pixels left at 0), one-hot
targets (10 classes).

(a) 64→16→10 on digits, λ = ``--lam`` (default 1e-3; PyTorch's ``weight_decay = 2λ``), 1210
    parameters: ``NewtonMR`` (Hessian-vector products only) against ``SaddleNewton`` (dense
    Hessian + eigh every step), both saddle-capable, both to ``gtol = 1e-12``, from the same
    start (full-batch Adam: 2000 steps at 1e-2, 5000 at 1e-3, 5000 at 1e-4). Time per solve
    (median of repeats after one untimed solve for compilation), final ``||∇L||_∞``, steps,
    HVPs; the end points compared and the inertia bounds of :func:`lanczos_inertia_bounds`
    checked against the dense index. Target: ≥ 5× faster per solve at the same ``||∇L||_∞``.
(b) 64→256→256→10 (85 002 parameters) on a synthetic teacher-student set of the same size as
    digits: 1797 Gaussian inputs, targets from a seeded teacher of the same architecture, λ = 0
    (the global minimum value is 0). Start: Adam from the student's initialisation (2000 steps at
    1e-3).
(c) 64→256→256→10 on digits, λ = 0 (85 002 parameters against 17 970 residuals: the
    interpolating global minima form a manifold, the Hessian there is singular). Start: Adam from
    the initialisation (2000 steps at 1e-2).

(d) The command line on (c)'s start, as a user runs it on both cores: ``lossatlas find --model
    START.npz --data DIGITS.npz --gtol 1e-10 --time-limit T --json`` (the default method,
    flow-newton: a flow cut to ``policy.flow_max_steps`` steps above the dense limit, then
    NewtonMR, then the Lanczos classification), in a subprocess: its wall time, the time its
    search reached ``||∇L||_∞ ≤ 1e-10`` (the flow plus the first NewtonMR run, from its JSON),
    the final status and label; against PyTorch float64 L-BFGS from the same start with two
    threads, given the command's wall time. Run with ``--threads 2``.

In (b) and (c): ``NewtonMR(gtol=1e-10)`` (default ``max_inner``), time to ``||∇L||_∞ ≤ 1e-10``
(one run, compilation included, capped at ``--max-time``); the inertia certificate
(:func:`lanczos_inertia_bounds`, k = 10, 400 HVPs) and ``lossatlas.classify`` at the end point
timed separately; against PyTorch float64 ``torch.optim.LBFGS`` (history 100, strong-Wolfe line
search, ``tolerance_grad = 1e-10``) from the same start on the identical model and loss, in its
own process with ``torch.set_num_threads(1)``, given NewtonMR's wall time or ``--torch-budget``
seconds, whichever is larger: its best ``||∇L||_∞`` and when it got there. Target: minutes.

XLA, BLAS and torch are limited to ``--threads`` threads (default 1) and the process is pinned to
that many CPUs (``_env.limit_threads``).
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

import _env  # noqa: E402  (sets thread limits before numpy/JAX/torch are imported)

SCHEMA = "lossatlas.benchmark.newton_mr/2"
WARMUP_PHASES = ((1e-2, 2000), (1e-3, 5000), (1e-4, 5000))
LARGE = (64, 256, 256, 10)
#: Adam warm-up of the 85 002-parameter cases: (b) synthetic, (c) digits.
WARMUP_SYNTHETIC = ((1e-3, 2000),)
WARMUP_DIGITS = ((1e-2, 2000),)


# --------------------------------------------------------------------------- data and model
def digits():
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    return (X - mu) / sd, np.eye(10)[y]


def landscape(widths, lam):
    """The digits landscape of a seeded tanh MLP with biases."""
    import jax
    import jax.numpy as jnp

    from lossatlas.data import Dataset
    from lossatlas.landscape import Landscape
    from lossatlas.models import init_mlp

    X, Y = digits()
    net = init_mlp(jax.random.PRNGKey(0), widths, "tanh", bias=True)
    return Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(Y)), lam=lam)


def synthetic_landscape(widths, n=1797):
    """Teacher-student: ``n`` Gaussian inputs labelled by a seeded teacher of the same
    architecture as the (differently seeded) student; λ = 0, global minimum value 0."""
    import jax

    from lossatlas.data import teacher_student
    from lossatlas.landscape import Landscape
    from lossatlas.models import init_mlp

    teacher = init_mlp(jax.random.PRNGKey(100), widths, "tanh", bias=True)
    data = teacher_student(jax.random.PRNGKey(101), teacher, n)
    return Landscape(init_mlp(jax.random.PRNGKey(0), widths, "tanh", bias=True), data)


def warm_start(ls, phases=WARMUP_PHASES):
    """Adam phases from the initialisation; returns θ and a record."""
    import jax.numpy as jnp
    import numpy as np

    from lossatlas.dynamics import optimise

    theta = ls.ravel()
    rec = []
    t0 = time.perf_counter()
    for lr, n in phases:
        sol = optimise(ls, jnp.asarray(theta), method="adam", learning_rate=lr, num_steps=n, record_every=500)
        theta = np.asarray(sol.theta)
        rec.append({"learning_rate": lr, "steps": int(sol.num_steps), "loss": float(sol.losses[-1]),
                    "grad_norm_inf": float(sol.grad_norms[-1]), "stopped_early": bool(sol.stopped_early)})
    L, g = ls.value_and_grad(jnp.asarray(theta))
    return theta, {"phases": rec, "loss": float(L), "grad_norm_inf": float(np.max(np.abs(np.asarray(g)))),
                   "seconds": time.perf_counter() - t0}


def solve_record(sol):
    st = sol.stats
    out = {"status": sol.result.name, "loss": sol.loss, "grad_norm_inf": sol.grad_norm_inf,
           "num_steps": st.num_steps, "num_hessians": st.num_hessians, "num_hvp": st.num_hvp,
           "wall_time": st.wall_time, "history": list(st.history), "gradient_floor": st.gradient_floor}
    for k in ("inner_iterations", "inner_history", "step_kinds", "npc_steps", "backtracks", "min_ritz_value"):
        if k in st.details:
            out[k] = st.details[k]
    return out


# --------------------------------------------------------------------------- (a)
def part_a(lam, repeats):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from lossatlas.curvature import dense_hessian, lanczos_inertia_bounds
    from lossatlas.solvers import NewtonMR, SaddleNewton, find_critical_point

    ls = landscape((64, 16, 10), lam)
    theta0, warm = warm_start(ls)
    solvers = {"newton_mr": NewtonMR(gtol=1e-12, inertia_k=0), "saddle_newton_dense": SaddleNewton(gtol=1e-12)}
    out = {"model": "64-16-10 tanh", "n_params": ls.n_params, "lam": lam, "warm_start": warm, "solvers": {}}
    sols = {}
    for name, solver in solvers.items():
        t, first = _env.time_once(lambda s=solver: find_critical_point(ls, jnp.asarray(theta0), s, max_steps=200,
                                                                         throw=False))
        times = []
        for _ in range(repeats):
            dt, sol = _env.time_once(lambda s=solver: find_critical_point(ls, jnp.asarray(theta0), s, max_steps=200,
                                                                            throw=False))
            times.append(dt)
        sols[name] = sol
        out["solvers"][name] = {"first_call_s": t, "times_s": times, "median_s": statistics.median(times),
                                **solve_record(sol)}
        print(f"(a) {name}: {statistics.median(times):.3f} s, {sol.result.name}, "
              f"|g|_inf {sol.grad_norm_inf:.2e}", file=sys.stderr, flush=True)
    mr, dn = sols["newton_mr"], sols["saddle_newton_dense"]
    out["speedup_dense_over_mr"] = out["solvers"]["saddle_newton_dense"]["median_s"] / out["solvers"]["newton_mr"][
        "median_s"]
    out["same_point"] = {"max_abs_dtheta": float(np.max(np.abs(mr.theta - dn.theta))),
                         "loss_difference": float(mr.loss - dn.loss)}
    # inertia: Lanczos bounds at the matrix-free end point against the dense spectrum there
    t, ib = _env.time_once(lambda: lanczos_inertia_bounds(ls, jnp.asarray(mr.theta), k=10))
    H = np.asarray(dense_hessian(ls, jnp.asarray(mr.theta)))
    lam_all = np.linalg.eigvalsh(0.5 * (H + H.T))
    out["inertia"] = {**ib.to_record(), "seconds": t,
                      "dense_index": int(np.sum(lam_all < -ib.tolerance)),
                      "dense_nullity": int(np.sum(np.abs(lam_all) <= ib.tolerance)),
                      "dense_min_eig": float(lam_all[0]), "dense_max_eig": float(lam_all[-1])}
    del jax
    return out


# --------------------------------------------------------------------------- (b), (c)
def part_large(name, ls, phases, torch_budget, max_time, global_min_value):
    """NewtonMR to 1e-10 at 85 002 parameters from an Adam start, its certificates, and torch
    L-BFGS from the same start."""
    import jax.numpy as jnp
    import numpy as np

    import lossatlas as la
    from lossatlas.curvature import lanczos_inertia_bounds
    from lossatlas.solvers import NewtonMR, find_critical_point

    theta0, warm = warm_start(ls, phases)
    print(f"({name}) warm start: loss {warm['loss']:.3e}, |g|_inf {warm['grad_norm_inf']:.2e} after "
          f"{warm['seconds']:.0f} s", file=sys.stderr, flush=True)
    progress = []
    t_start = time.perf_counter()
    solver = NewtonMR(gtol=1e-10, inertia_k=0, max_time=max_time,
                      progress=lambda k, L, g: progress.append((k, time.perf_counter() - t_start, L, g)))
    dt, sol = _env.time_once(lambda: find_critical_point(ls, jnp.asarray(theta0), solver, max_steps=300,
                                                         throw=False))
    reached = next((t for _, t, _, g in progress if g <= 1e-10), None)
    print(f"({name}) NewtonMR: {dt:.1f} s, {sol.result.name}, |g|_inf {sol.grad_norm_inf:.2e}", file=sys.stderr,
          flush=True)
    t_in, ib = _env.time_once(lambda: lanczos_inertia_bounds(ls, jnp.asarray(sol.theta), k=10))
    t_cl, cls = _env.time_once(lambda: la.classify(ls, jnp.asarray(sol.theta), global_min_value=global_min_value,
                                                   gtol=1e-10))
    print(f"({name}) certificate {t_in:.0f} s; classify {t_cl:.0f} s: {cls.label.value}", file=sys.stderr,
          flush=True)
    X, Y = np.asarray(ls.data.X), np.asarray(ls.data.Y)
    out = {"model": "64-256-256-10 tanh", "n_params": ls.n_params, "lam": ls.lam, "n_samples": int(X.shape[0]),
           "global_min_value": global_min_value, "warm_start": warm,
           "newton_mr": {"seconds": dt, "seconds_to_1e-10": reached, **solve_record(sol),
                         "max_inner": int(solver.max_inner),
                         "progress": [{"step": k, "elapsed_s": t, "loss": L, "grad_norm_inf": g}
                                      for k, t, L, g in progress]},
           "inertia": {**ib.to_record(), "seconds": t_in},
           "classification": {**cls.to_record(), "reason": cls.reason, "seconds": t_cl}}
    budget = max(torch_budget, dt)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "start.npz"
        np.savez(path, theta=theta0, X=X, Y=Y, widths=np.asarray(LARGE), lam=ls.lam, budget=budget)
        proc = subprocess.run([sys.executable, __file__, "--torch-worker", str(path)], capture_output=True,
                              text=True, check=True)
    out["torch_lbfgs"] = json.loads(proc.stdout)
    out["torch_lbfgs"]["start_loss_matches"] = abs(out["torch_lbfgs"]["start_loss"] - warm["loss"]) <= 1e-12 * max(
        1.0, warm["loss"])
    print(f"({name}) torch L-BFGS: best |g|_inf {out['torch_lbfgs']['best_grad_norm_inf']:.2e} in "
          f"{out['torch_lbfgs']['seconds']:.0f} s", file=sys.stderr, flush=True)
    return out


def part_cli(time_limit, threads):
    """(d): `lossatlas find` from the command line on (c)'s start, and torch L-BFGS with the same
    wall time and threads."""
    import numpy as np

    from lossatlas.data import Dataset, save_data, save_network

    ls = landscape(LARGE, 0.0)
    theta0, warm = warm_start(ls, WARMUP_DIGITS)
    print(f"(d) warm start: loss {warm['loss']:.3e}, |g|_inf {warm['grad_norm_inf']:.2e}", file=sys.stderr,
          flush=True)
    X, Y = np.asarray(ls.data.X), np.asarray(ls.data.Y)
    with tempfile.TemporaryDirectory() as tmp:
        net, data, found = Path(tmp) / "start.npz", Path(tmp) / "digits.npz", Path(tmp) / "found.npz"
        import jax.numpy as jnp

        save_network(net, ls.unravel(jnp.asarray(theta0)))
        save_data(data, Dataset(jnp.asarray(X), jnp.asarray(Y)))
        cmd = [sys.executable, "-m", "lossatlas", "find", "--model", str(net), "--data", str(data),
               "--gtol", "1e-10", "--time-limit", f"{time_limit:g}", "--json", "--out", str(found)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode not in (0, 3):
            raise RuntimeError(f"lossatlas find failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rec = json.loads(proc.stdout)
    first = rec["attempts"][0]
    search = rec["timings"]["flow"] + first["wall_time"] if first["grad_norm_inf"] <= 1e-10 else None
    cls = rec.get("classification") or {}
    out = {"command": "lossatlas find --model START.npz --data DIGITS.npz --gtol 1e-10 "
                      f"--time-limit {time_limit:g} --json --out FOUND.npz",
           "threads": threads, "warm_start": warm, "exit_code": proc.returncode, "wall_seconds": wall,
           "seconds_to_1e-10": search, "status": rec["status"], "grad_norm_inf": rec["grad_norm_inf"],
           "loss": rec["loss"], "label": cls.get("label"), "label_reason": (cls.get("evidence") or {}).get("reason"),
           "continuation": rec.get("continuation"), "timings": rec["timings"], "flow": rec.get("flow"),
           "attempts": rec["attempts"]}
    print(f"(d) lossatlas find: {wall:.0f} s wall, exit {proc.returncode}, to 1e-10 in {search} s, "
          f"|g|_inf {rec['grad_norm_inf']:.2e}, {cls.get('label')}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "start.npz"
        np.savez(path, theta=theta0, X=X, Y=Y, widths=np.asarray(LARGE), lam=0.0, budget=wall, threads=threads)
        proc = subprocess.run([sys.executable, __file__, "--torch-worker", str(path)], capture_output=True,
                              text=True, check=True)
    out["torch_lbfgs"] = json.loads(proc.stdout)
    best = out["torch_lbfgs"]["best_grad_norm_inf"]
    out["torch_lbfgs_best_over_target"] = best / 1e-10
    print(f"(d) torch L-BFGS: best |g|_inf {best:.2e} in {out['torch_lbfgs']['seconds']:.0f} s", file=sys.stderr,
          flush=True)
    return out


def torch_worker(path):
    """PyTorch float64 L-BFGS from the start in ``path``; prints one JSON record."""
    import numpy as np
    import torch

    d = np.load(path)
    torch.set_num_threads(int(d["threads"]) if "threads" in d else 1)
    torch.set_default_dtype(torch.float64)
    widths = [int(w) for w in d["widths"]]
    lam, budget = float(d["lam"]), float(d["budget"])
    X, Y = torch.from_numpy(d["X"]), torch.from_numpy(d["Y"])
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    params = [p for m in model if isinstance(m, torch.nn.Linear) for p in (m.weight, m.bias)]
    theta, k = d["theta"], 0
    with torch.no_grad():
        for p in params:  # flat order W1, b1, W2, b2, ... (row-major), as in lossatlas
            p.copy_(torch.from_numpy(theta[k : k + p.numel()].reshape(p.shape)))
            k += p.numel()
    N = X.shape[0]

    def loss_fn():
        r = model(X) - Y
        return 0.5 * (r * r).sum() / N + lam * sum((p * p).sum() for p in params)

    start_loss = float(loss_fn())
    opt = torch.optim.LBFGS(params, lr=1, max_iter=100, history_size=100, tolerance_grad=1e-10,
                            tolerance_change=0.0, line_search_fn="strong_wolfe")
    t0 = time.perf_counter()
    best, best_t, trace, outer = np.inf, 0.0, [], 0

    def closure():
        opt.zero_grad()
        L = loss_fn()
        L.backward()
        return L

    while time.perf_counter() - t0 < budget:
        opt.step(closure)
        outer += 1
        opt.zero_grad()
        L = loss_fn()
        L.backward()
        g = max(float(p.grad.abs().max()) for p in params)
        el = time.perf_counter() - t0
        trace.append({"elapsed_s": el, "loss": float(L), "grad_norm_inf": g})
        if g < best:
            best, best_t = g, el
        if g <= 1e-10 or not np.isfinite(g):
            break
    state = opt.state[opt._params[0]]
    print(json.dumps({"start_loss": start_loss, "best_grad_norm_inf": best, "best_at_s": best_t,
                      "seconds": time.perf_counter() - t0, "budget_s": budget, "outer_steps": outer,
                      "func_evals": int(state.get("func_evals", 0)), "n_iter": int(state.get("n_iter", 0)),
                      "final_loss": trace[-1]["loss"] if trace else start_loss, "trace": trace,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


def _carry_over(doc, args):
    """Parts not run this time are kept from the existing `--out` file (with its date, commit and
    settings under ``carried_over``), so a partial re-run does not drop earlier results."""
    out = Path(args.out)
    if not out.exists():
        return
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return
    for part in "abcd":
        if part not in args.parts and part in old and "carried_over" in old[part]:
            doc[part] = old[part]
        elif part not in args.parts and part in old:
            env = old.get("environment", {})
            doc[part] = {**old[part], "carried_over": {
                "schema": old.get("schema"), "date_utc": env.get("date_utc"), "git_commit": env.get("git_commit"),
                "git_dirty": env.get("git_dirty"), "load_average_start": env.get("load_average_start"),
                "settings": old.get("settings")}}


def plot(path, png):
    """‖∇L‖∞ against wall time in (b) and (c): NewtonMR and PyTorch L-BFGS from the same start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = json.loads(Path(path).read_text())
    parts = [p for p in ("b", "c") if p in doc]
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 3.8), squeeze=False)
    titles = {"b": "(b) teacher-student, 85 002 params", "c": "(c) digits, λ = 0, 85 002 params"}
    for ax, p in zip(axes[0], parts, strict=True):
        mr, tl = doc[p]["newton_mr"]["progress"], doc[p]["torch_lbfgs"]["trace"]
        ax.semilogy([x["elapsed_s"] for x in mr], [x["grad_norm_inf"] for x in mr], "o-", ms=3,
                    label="lossatlas NewtonMR")
        ax.semilogy([x["elapsed_s"] for x in tl], [x["grad_norm_inf"] for x in tl], "-", label="PyTorch float64 L-BFGS")
        ax.axhline(1e-10, color="grey", ls=":", lw=1)
        ax.set_xlabel("wall time (s, one core)")
        ax.set_ylabel("‖∇L‖∞")
        ax.set_title(titles[p], fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="abc")
    ap.add_argument("--lam", type=float, default=1e-3, help="λ of part (a)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-budget", type=float, default=300.0)
    ap.add_argument("--max-time", type=float, default=3600.0, help="NewtonMR time budget in (b), (c), seconds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cli-time-limit", type=float, default=900.0, help="--time-limit of the command in (d)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(_env.REPO / "benchmarks" / "results" / "newton_mr.json"))
    ap.add_argument("--torch-worker")
    ap.add_argument("--plot", metavar="JSON", help="only draw docs/images/newton_mr.png from a result file")
    args = ap.parse_args()
    if args.plot:
        print(plot(args.plot, _env.REPO / "docs" / "images" / "newton_mr.png"))
        return
    if args.torch_worker:
        torch_worker(args.torch_worker)
        return
    threads = _env.limit_threads(args.threads)
    import jax

    jax.config.update("jax_enable_x64", True)  # the benchmark owns its process, like the CLI
    doc = {"schema": SCHEMA, "environment": _env.environment(packages=("jax", "jaxlib", "numpy", "scipy", "equinox",
                                                                         "torch", "scikit-learn")),
           "threads": threads, "settings": vars(args)}
    t0 = time.perf_counter()
    torch_budget = 10.0 if args.quick else args.torch_budget
    if "a" in args.parts:
        doc["a"] = part_a(args.lam, 1 if args.quick else args.repeats)
    if "b" in args.parts:
        doc["b"] = part_large("b", synthetic_landscape(LARGE), WARMUP_SYNTHETIC, torch_budget, args.max_time, 0.0)
    if "c" in args.parts:
        doc["c"] = part_large("c", landscape(LARGE, 0.0), WARMUP_DIGITS, torch_budget, args.max_time, None)
    if "d" in args.parts:
        doc["d"] = part_cli(args.cli_time_limit, args.threads)
    doc["total_seconds"] = time.perf_counter() - t0
    _carry_over(doc, args)
    doc["environment"]["load_average_end"] = _env.load_average()
    _env.write_json(args.out, doc)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
