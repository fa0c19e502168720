"""ReLU critical points: lossatlas PatternNewton vs PyTorch float64 L-BFGS (strong Wolfe).

20 random starts of a 10→8→1 relu net (97 parameters) on two shipped scikit-learn regression
sets (diabetes, 442 × 10; make_friedman1, 500 × 10, generated), X and y standardised, loss
1/(2N) Σ (f − y)². lossatlas: seconds per solve and the fraction reaching ||∇L||_∞ ≤ 1e-10 or
returning a `kink` (with its Clarke measure). Baseline: torch.optim.LBFGS (float64,
line_search_fn="strong_wolfe", full batch) from the same starts, in its own subprocess with
torch.set_num_threads(1): its best ||∇L||_∞ and time.

    python benchmarks/relu_find.py --out benchmarks/results/relu_find.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import REPO, environment, write_json  # noqa: E402

TARGET = 1e-10


def datasets():
    import numpy as np
    from sklearn.datasets import load_diabetes, make_friedman1

    out = {}
    X, y = load_diabetes(return_X_y=True)
    out["diabetes"] = (X, y)
    X, y = make_friedman1(n_samples=500, n_features=10, noise=0.1, random_state=0)
    out["friedman1"] = (X, y)
    return {k: ((X - X.mean(0)) / X.std(0), ((y - y.mean()) / y.std())[:, None]) for k, (X, y) in
            out.items()} | {"_np": np}


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


def torch_worker(path_in, path_out, max_iter, max_time):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    d = np.load(path_in)
    X, Y, T = torch.tensor(d["X"]), torch.tensor(d["Y"]), d["starts"]
    rows = []
    for th in T:
        m = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
        with torch.no_grad():
            m[0].weight.copy_(torch.tensor(th[:80].reshape(8, 10)))
            m[0].bias.copy_(torch.tensor(th[80:88]))
            m[2].weight.copy_(torch.tensor(th[88:96].reshape(1, 8)))
            m[2].bias.copy_(torch.tensor(th[96:97]))
        opt = torch.optim.LBFGS(m.parameters(), lr=1, max_iter=max_iter, tolerance_grad=1e-14,
                                tolerance_change=0, history_size=50, line_search_fn="strong_wolfe")
        best = [np.inf]

        def closure(m=m, opt=opt, best=best):
            opt.zero_grad()
            loss = ((m(X) - Y) ** 2).sum() / (2 * X.shape[0])
            loss.backward()
            gi = max(float(p.grad.abs().max()) for p in m.parameters())
            best[0] = min(best[0], gi)
            return loss

        t = time.perf_counter()
        while time.perf_counter() - t < max_time:
            opt.step(closure)
            if best[0] <= TARGET:
                break
            if opt.state[opt._params[0]].get("n_iter", 0) >= max_iter:
                break
        rows.append({"best_grad_inf": best[0], "seconds": time.perf_counter() - t})
    Path(path_out).write_text(json.dumps(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/relu_find.json"))
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--max-time", type=float, default=20.0, help="seconds per solve (both)")
    ap.add_argument("--lbfgs-iters", type=int, default=5000)
    ap.add_argument("--torch-worker", nargs=2)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(*args.torch_worker, args.lbfgs_iters, args.max_time)
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from lossatlas._progress import Budget
    from lossatlas.data import Dataset
    from lossatlas.landscape import Landscape
    from lossatlas.models import MLP
    from lossatlas.solvers import RESULTS, PatternNewton

    sets = datasets()
    sets.pop("_np")
    T = starts(args.starts)
    doc = {"benchmark": "relu_find", "schema": "lossatlas.benchmark.relu_find/1", "target_grad_inf": TARGET,
           "net": "10-8-1 relu with biases (97 parameters)", "max_time_per_solve": args.max_time,
           "baseline": "torch.optim.LBFGS float64 strong_wolfe, history 50, set_num_threads(1), subprocess",
           "datasets": {}}
    for name, (X, Y) in sets.items():
        net = MLP((np.zeros((8, 10)), np.zeros((1, 8))), (np.zeros(8), np.zeros(1)), "relu")
        ls = Landscape(net, Dataset(X, Y))
        PatternNewton().run(ls, T[0], 3)  # compile outside the timings
        rows = []
        for th in T:
            t = time.perf_counter()
            sol = PatternNewton().run(ls, th, 1000, Budget(args.max_time))
            dt = time.perf_counter() - t
            det = sol.stats.details
            rows.append({"status": sol.result.name, "grad_inf": sol.grad_norm_inf, "loss": sol.loss,
                         "seconds": dt, "steps": sol.stats.num_steps,
                         "min_abs_preactivation": det["min_abs_preactivation"],
                         "clarke_stationarity": det.get("clarke_stationarity")})
            print(name, rows[-1], flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            pin, pout = Path(tmp) / "in.npz", Path(tmp) / "out.json"
            np.savez(pin, X=X, Y=Y, starts=T)
            subprocess.run([sys.executable, __file__, "--torch-worker", str(pin), str(pout),
                            "--max-time", str(args.max_time), "--lbfgs-iters", str(args.lbfgs_iters)],
                           check=True)
            trows = json.loads(pout.read_text())
        ok = [r for r in rows if r["status"] in (RESULTS.successful.name, RESULTS.roundoff_floor.name)]
        kink = [r for r in rows if r["status"] == RESULTS.kink.name]
        doc["datasets"][name] = {
            "n_samples": int(X.shape[0]),
            "lossatlas": {"median_seconds": float(np.median([r["seconds"] for r in rows])),
                          "mean_seconds": float(np.mean([r["seconds"] for r in rows])),
                          "fraction_converged": len(ok) / len(rows), "fraction_kink": len(kink) / len(rows),
                          "fraction_converged_or_kink": (len(ok) + len(kink)) / len(rows),
                          "kink_clarke_stationarity": [r["clarke_stationarity"] for r in kink],
                          "rows": rows},
            "torch_lbfgs": {"median_seconds": float(np.median([r["seconds"] for r in trows])),
                            "median_best_grad_inf": float(np.median([r["best_grad_inf"] for r in trows])),
                            "fraction_reaching_target": float(np.mean([r["best_grad_inf"] <= TARGET for r in trows])),
                            "rows": trows},
        }
    doc["environment"] = environment()
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
