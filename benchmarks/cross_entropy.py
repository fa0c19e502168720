"""Cross-entropy benchmark: top-5 Hessian eigenvalues against PyHessian on PyTorch-trained classifiers.

Usage::

    python benchmarks/cross_entropy.py [--quick] [--out benchmarks/results/cross_entropy.json]
                                       [--figure docs/images/cross_entropy_top5.png]
    python benchmarks/cross_entropy.py --plot benchmarks/results/cross_entropy.json   # redraw only

Issue 18: "Cross-entropy: top-5 eigenvalues vs PyHessian with ``nn.CrossEntropyLoss`` on the
same model." Data: scikit-learn's ``load_digits`` (1797 × 64, pixels standardised, constant
pixels left at 0; integer class labels 0..9). Models: ``nn.Sequential`` MLPs with biases,
created and trained in PyTorch float64 (full-batch Adam, ``nn.CrossEntropyLoss()``, seeded),
saved as a checkpoint ``{"state_dict", "architecture"}`` and read into lossatlas with
``lossatlas.from_torch``; the landscape is ``Landscape(net, Dataset(X, one-hot Y),
loss="cross_entropy")`` (softmax cross-entropy with mean reduction, i.e. ``nn.CrossEntropyLoss()``
with class-index targets).

What is measured, all in one run:

1. Same model, same loss: PyTorch's ``nn.CrossEntropyLoss()`` value and ``autograd`` gradient
   at the trained parameters against ``Landscape.value_and_grad`` (max abs differences), and one
   HVP (``torch.func``) against ``Landscape.hvp``.
2. Truth: the dense Hessian (``lossatlas.dense_hessian`` + LAPACK ``eigh``) where it fits, with a
   tight SciPy ``eigsh`` reference beside it; the ``eigsh`` reference alone at 85 002 parameters.
3. Top-5 eigenvalues: ``lanczos_extreme(ls, θ, k=5, which="largest")`` at its default
   ``residual_target=1e-10`` and at 1e-3, against PyHessian 0.1
   ``hessian(model, nn.CrossEntropyLoss(), data=(X, y), cuda=False).eigenvalues(top_n=5)`` at
   its defaults (``tol=1e-3, maxIter=100``) and tightened (``tol=1e-6, maxIter=1000``); runs
   alternate one by one; relative error of each eigenvalue against the truth, wall time,
   Hessian-vector products, speed-ups as medians of the side-by-side time ratios.
4. The CLI path once per model: ``lossatlas import-torch`` of the checkpoint and ``lossatlas
   analyze --loss cross_entropy --method lanczos --top-k 5 --json`` on a data file with integer
   ``labels`` (cold: process start-up and compilation included; not a ratio).

Everything is float64 on both sides: the torch worker sets ``torch.set_default_dtype(torch.float64)``
(PyHessian draws its power-iteration vectors with ``torch.randn`` in the default dtype; they
would be float32 otherwise), the model and X are float64 tensors, and the dtypes PyHessian's HVPs
actually see are recorded. PyHessian runs on the CPU through its own ``cuda=False`` argument (no
patching of its code); the only wrapping counts its HVPs and power iterations, maths untouched.

PyTorch runs in its own process (this script with ``--torch-worker``, driven over a pipe);
the JAX process imports torch only to read the checkpoint for ``from_torch``. XLA, BLAS and
torch are limited to ``--threads`` threads (default 1) and pinned (``_env.limit_threads``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _env  # noqa: E402  (sets thread limits before numpy/JAX/torch are imported)

SCHEMA = "lossatlas.benchmark.cross_entropy/1"
TOP_K = 5
N_CLASSES = 10
#: Brief training: full-batch Adam in float64.
TRAIN = {"optimizer": "Adam", "lr": 1e-3, "steps": 100, "full_batch": True}
PYHESSIAN_SETTINGS = {
    "default": {"tol": 1e-3, "maxIter": 100},
    "tight": {"tol": 1e-6, "maxIter": 1000},
}
LOSSATLAS_SETTINGS = {
    "default": {"residual_target": 1e-10},
    "r1e-3": {"residual_target": 1e-3},
}
#: Largest parameter count with a dense Hessian (full run / --quick).
DENSE_MAX = {False: 10_000, True: 3_000}

CASES = [
    {"name": "64-32-10 tanh", "widths": [64, 32, N_CLASSES], "activation": "tanh", "seed": 0},
    {"name": "64-64-64-10 relu", "widths": [64, 64, 64, N_CLASSES], "activation": "relu", "seed": 1},
    {"name": "64-256-256-10 relu", "widths": [64, 256, 256, N_CLASSES], "activation": "relu", "seed": 2},
]


def n_params_of(widths) -> int:
    return sum(widths[i] * widths[i + 1] + widths[i + 1] for i in range(len(widths) - 1))


def repeats_for(p: int, quick: bool) -> dict:
    if quick:
        return {"default": 2, "tight": 1}
    if p > 50_000:
        return {"default": 3, "tight": 2}
    return {"default": 7, "tight": 3}


def digits():
    """scikit-learn digits: X (1797, 64) standardised per pixel, integer labels (1797,)."""
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    return np.ascontiguousarray((X - mu) / sd, dtype=np.float64), y.astype(np.int64)


def rel_errors_each(est, truth_desc) -> list[float]:
    """``|λ̂_i − λ_i| / |λ_i|`` for i = 1..5, both sorted descending."""
    e = sorted(est, reverse=True)[:TOP_K]
    t = list(truth_desc)[:TOP_K]
    return [abs(a - b) / abs(b) for a, b in zip(e, t, strict=True)]


# =============================================================================== torch side
class _TorchSide:
    """The PyTorch/PyHessian half, run in the worker process (no JAX imported there)."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        # PyHessian draws its power-iteration vectors with torch.randn in the default dtype.
        torch.set_default_dtype(torch.float64)
        import pyhessian  # noqa: F401

        self.ph = sys.modules["pyhessian.hessian"]  # the module (the package rebinds the name)
        self.count = 0
        self.iters: dict[int, int] = {}
        self.dtypes: set[str] = set()
        hvp, orth = self.ph.hessian_vector_product, self.ph.orthnormal

        def counting_hvp(gradsH, params, v):  # count HVPs and record dtypes; maths untouched
            self.count += 1
            self.dtypes.update(str(t.dtype) for t in (*v, *params))
            return hvp(gradsH, params, v)

        def counting_orthnormal(w, v_list):  # called once per power iteration of eigenvalue #len(v_list)
            self.iters[len(v_list)] = self.iters.get(len(v_list), 0) + 1
            return orth(w, v_list)

        self.ph.hessian_vector_product = counting_hvp
        self.ph.orthnormal = counting_orthnormal
        self.torch = torch

    def train(self, data_file: str, ckpt_file: str, widths: list[int], activation: str, seed: int,
              lr: float, steps: int) -> dict:
        import numpy as np

        torch = self.torch
        nn = torch.nn
        z = np.load(data_file, allow_pickle=False)
        self.X = torch.from_numpy(z["X"])
        self.y = torch.from_numpy(z["labels"])
        torch.manual_seed(seed)
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))  # torch's default init
            if i < len(widths) - 2:
                layers.append(act())
        model = nn.Sequential(*layers)
        criterion = nn.CrossEntropyLoss()  # softmax cross-entropy, mean over samples
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        curve = []
        t0 = time.perf_counter()
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = criterion(model(self.X), self.y)
            loss.backward()
            opt.step()
            if step % 25 == 0:
                curve.append([step, loss.item()])
        t_train = time.perf_counter() - t0
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            out = model(self.X)
            loss = float(criterion(out, self.y))
            acc = float((out.argmax(1) == self.y).double().mean())
        self.model, self.criterion = model, criterion
        torch.save({"state_dict": model.state_dict(),
                    "architecture": {"activation": activation, "widths": widths, "bias": True}}, ckpt_file)
        return {
            "train_time_s": t_train,
            "loss_curve": curve,
            "final_loss": loss,
            "train_accuracy": acc,
            "param_dtypes": sorted({str(p.dtype) for p in model.parameters()}),
            "X_dtype": str(self.X.dtype),
            "y_dtype": str(self.y.dtype),
            "n_params": sum(p.numel() for p in model.parameters()),
        }

    def check(self, v_file: str) -> dict:
        """nn.CrossEntropyLoss value, autograd gradient and a torch.func HVP at the trained weights."""
        import numpy as np

        torch = self.torch
        model, criterion = self.model, self.criterion
        params = dict(model.named_parameters())  # 0.weight, 0.bias, 2.weight, …: W1, b1, W2, …
        model.zero_grad(set_to_none=True)
        loss = criterion(model(self.X), self.y)
        grads = torch.autograd.grad(loss, list(params.values()))
        g = torch.cat([t.reshape(-1) for t in grads])
        names, shapes = list(params), [tuple(p.shape) for p in params.values()]

        def flat_loss(flat):
            ps, i = {}, 0
            for nm, s in zip(names, shapes, strict=True):
                k = math.prod(s)
                ps[nm] = flat[i: i + k].reshape(s)
                i += k
            return criterion(torch.func.functional_call(model, ps, (self.X,)), self.y)

        flat0 = torch.cat([p.detach().reshape(-1) for p in params.values()])
        v = torch.from_numpy(np.load(v_file))
        hv = torch.func.jvp(torch.func.grad(flat_loss), (flat0,), (v,))[1]
        out = Path(v_file).with_suffix(".torch.npz")
        np.savez(out, grad=g.detach().numpy(), hv=hv.detach().numpy(), theta=flat0.numpy())
        return {"loss": loss.item(), "file": str(out), "param_order": names}

    def pyhessian(self, seed: int, tol: float, maxIter: int) -> dict:
        torch = self.torch
        self.model.zero_grad(set_to_none=True)  # PyHessian's backward() would accumulate
        torch.manual_seed(seed)
        self.count, self.iters = 0, {}
        t0 = time.perf_counter()
        h = self.ph.hessian(self.model, self.criterion, data=(self.X, self.y), cuda=False)
        ev, _vecs = h.eigenvalues(maxIter=maxIter, tol=tol, top_n=TOP_K)
        dt = time.perf_counter() - t0
        self.model.zero_grad(set_to_none=True)
        iters = [self.iters.get(i, 0) for i in range(TOP_K)]
        return {
            "time_s": dt,
            "eigenvalues": [float(e) for e in ev],
            "matvecs": self.count,
            "iterations_per_eigenvalue": iters,
            "hit_maxIter": [it >= maxIter for it in iters],
            "dtypes_seen": sorted(self.dtypes),
        }


def torch_worker(threads: int) -> None:
    """Serve JSON-line commands on stdin, one JSON-line answer each on stdout."""
    side = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("cmd")
        try:
            if op == "quit":
                out = {}
            elif op == "init":
                side = _TorchSide(threads)
                out = {"torch": side.torch.__version__, "threads": side.torch.get_num_threads(),
                       "default_dtype": str(side.torch.get_default_dtype())}
            else:
                out = getattr(side, op)(**cmd)
        except Exception:
            out = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        if op == "quit":
            return


class TorchWorker:
    """The JAX side's handle on the torch worker process."""

    def __init__(self, threads: int):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--torch-worker", "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=os.environ.copy())
        self.info = self.call("init")

    def call(self, op: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"torch worker exited (code {self.proc.wait()})")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError("torch worker failed:\n" + out["error"])
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call("quit")
            self.proc.wait(timeout=60)


# =============================================================================== JAX side
def lanczos_reference(ls, theta, *, k: int = 10, ncv: int = 80, seed: int = 12345) -> dict:
    """Tight-tolerance SciPy ``eigsh`` on its own jitted HVP (independent of lanczos_extreme)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.sparse.linalg as spla

    f = ls.objective
    # θ is an argument, not a closed-over constant (XLA would try to constant-fold the data pass).
    hvp = jax.jit(lambda x, u: jax.jvp(jax.grad(f), (x,), (u,))[1])
    count = [0]

    def mv(u):
        count[0] += 1
        return np.asarray(hvp(theta, jnp.asarray(np.ravel(u), dtype=jnp.float64)))

    p = ls.n_params
    op = spla.LinearOperator((p, p), matvec=mv, dtype=np.float64)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    lam, V = spla.eigsh(op, k=k, which="LA", tol=0.0, ncv=min(p, ncv), v0=rng.standard_normal(p))
    lam_min, _ = spla.eigsh(op, k=1, which="SA", tol=1e-8, ncv=min(p, 40), v0=rng.standard_normal(p))
    elapsed = time.perf_counter() - t0
    HV = np.stack([mv(V[:, j]) for j in range(k)], axis=1)
    resid = np.linalg.norm(HV - V * lam, axis=0) / float(np.max(np.abs(lam)))
    return {
        "eigenvalues_desc": sorted((float(x) for x in lam), reverse=True),
        "smallest_eigenvalue": float(lam_min[0]),
        "max_relative_residual": float(np.max(resid)),
        "matvecs": count[0],
        "time_s": elapsed,
        "settings": {"k": k, "ncv": ncv, "tol": 0.0, "which": "LA", "seed": seed},
    }


def dense_truth(ls, theta) -> dict:
    import numpy as np
    import scipy.linalg as sla

    from lossatlas import dense_hessian

    t_h, H = _env.time_once(lambda: dense_hessian(ls, theta))
    t_e, lam = _env.time_once(lambda H=H: sla.eigh(H, eigvals_only=True, overwrite_a=True, check_finite=False))
    del H
    return {
        "method": "dense: lossatlas.dense_hessian + scipy.linalg.eigh(eigvals_only=True)",
        "eigenvalues_desc": [float(x) for x in lam[::-1][:10]],
        "smallest_eigenvalue": float(lam[0]),
        "n_negative": int(np.sum(lam < 0)),
        "spectral_norm": float(np.max(np.abs(lam))),
        "hessian_s": t_h,
        "eigh_s": t_e,
    }


def cli_check(ckpt: Path, data_file: Path, tmp: Path, truth_desc) -> dict:
    """``lossatlas import-torch`` + ``lossatlas analyze --loss cross_entropy --method lanczos``, cold."""
    exe = [sys.executable, "-m", "lossatlas"]
    net = tmp / (ckpt.stem + ".npz")
    t0 = time.perf_counter()
    imp = subprocess.run([*exe, "import-torch", str(ckpt), "--out", str(net), "--json"],
                         capture_output=True, text=True, check=True)
    t_imp = time.perf_counter() - t0
    cmd = ["analyze", "--model", str(net), "--data", str(data_file), "--loss", "cross_entropy",
           "--method", "lanczos", "--top-k", str(TOP_K), "--json"]
    t0 = time.perf_counter()
    an = subprocess.run([*exe, *cmd], capture_output=True, text=True, check=True)
    t_an = time.perf_counter() - t0
    doc = json.loads(an.stdout)
    h = doc["hessian"]
    top = sorted(h["eigenvalues"], reverse=True)[:TOP_K]
    return {
        "commands": [f"lossatlas import-torch {ckpt.name} --out {net.name} --json",
                     "lossatlas " + " ".join(c if "/" not in c else Path(c).name for c in cmd)],
        "import_conversion": json.loads(imp.stdout)["conversion"]["summary"],
        "import_wall_s": t_imp,
        "analyze_wall_s_cold": t_an,
        "loss": doc["loss"],
        "top5_desc": top,
        "rel_error_each": rel_errors_each(top, truth_desc),
        "matvecs": h.get("matvecs"),
        "max_relative_residual": h.get("max_relative_residual"),
        "index_lower_bound": h.get("index_lower_bound"),
        "lambda_min": h.get("lambda_min"),
    }


def measure_top5(ls, theta, worker: TorchWorker, truth_desc, reps: dict) -> dict:
    """Lanczos and PyHessian runs alternating; per-eigenvalue errors against the truth."""
    import numpy as np

    from lossatlas import lanczos_extreme

    def la_run(label, seed):
        return _env.time_once(
            lambda: lanczos_extreme(ls, theta, k=TOP_K, which="largest", seed=seed, **LOSSATLAS_SETTINGS[label])
        )

    for label in LOSSATLAS_SETTINGS:  # warm-up: compile every Krylov buffer size used
        for seed in range(3):
            la_run(label, 10_000 + seed)
    worker.call("pyhessian", seed=10_000, **PYHESSIAN_SETTINGS["default"])
    la_runs = {k: [] for k in LOSSATLAS_SETTINGS}
    ph_runs = {k: [] for k in PYHESSIAN_SETTINGS}
    pairs = {(ph, la): [] for ph in PYHESSIAN_SETTINGS for la in LOSSATLAS_SETTINGS}
    for r in range(max(reps.values())):
        for ph_label in PYHESSIAN_SETTINGS:
            if r >= reps[ph_label]:
                continue
            mine = {la: la_run(la, r) for la in LOSSATLAS_SETTINGS}
            print(f"    PyHessian {ph_label} run {r}", file=sys.stderr, flush=True)
            ph = worker.call("pyhessian", seed=r, **PYHESSIAN_SETTINGS[ph_label])
            ph_runs[ph_label].append(ph)
            for la, run in mine.items():
                la_runs[la].append(run)
                pairs[(ph_label, la)].append(ph["time_s"] / run[0])

    rec = {"lossatlas": {}, "pyhessian": {}}
    la_err = {}
    for label, runs in la_runs.items():
        each = [rel_errors_each(s.eigenvalues, truth_desc) for _, s in runs]
        worst = [max(e) for e in each]
        la_err[label] = max(worst)
        t = _env.summarize_times([dt for dt, _ in runs])
        mv = statistics.median(s.matvecs for _, s in runs)
        rec["lossatlas"][label] = {
            "call": f"lanczos_extreme(ls, theta, k={TOP_K}, which='largest', seed=r, "
            f"residual_target={LOSSATLAS_SETTINGS[label]['residual_target']:g})",
            "time": t,
            "matvecs": [int(s.matvecs) for _, s in runs],
            "matvecs_median": mv,
            "time_per_matvec_s": t["median_s"] / mv,
            "rel_error_each_first_run": each[0],
            "max_rel_error": {"median": statistics.median(worst), "max": max(worst)},
            "max_relative_residual": max(float(np.max(s.residuals)) for _, s in runs),
            "eigenvalues_desc_first_run": sorted((float(x) for x in runs[0][1].eigenvalues), reverse=True),
        }
    for label, runs in ph_runs.items():
        st = PYHESSIAN_SETTINGS[label]
        each = [rel_errors_each(r["eigenvalues"], truth_desc) for r in runs]
        worst = [max(e) for e in each]
        t = _env.summarize_times([r["time_s"] for r in runs])
        mv = statistics.median(r["matvecs"] for r in runs)
        rec["pyhessian"][label] = {
            "call": "hessian(model, nn.CrossEntropyLoss(), data=(X, y), cuda=False)"
            f".eigenvalues(maxIter={st['maxIter']}, tol={st['tol']}, top_n={TOP_K})",
            "settings": st,
            "time": t,
            "matvecs": [r["matvecs"] for r in runs],
            "matvecs_median": mv,
            "time_per_matvec_s": t["median_s"] / mv,
            "iterations_per_eigenvalue": [r["iterations_per_eigenvalue"] for r in runs],
            "runs_with_an_eigenvalue_at_maxIter": sum(any(r["hit_maxIter"]) for r in runs),
            "rel_error_each_first_run": each[0],
            "rel_error_each_median_over_runs": [statistics.median(e[i] for e in each) for i in range(TOP_K)],
            "max_rel_error": {"median": statistics.median(worst), "max": max(worst)},
            "eigenvalues_first_run_as_returned": runs[0]["eigenvalues"],
            "returned_in_descending_order": [r["eigenvalues"] == sorted(r["eigenvalues"], reverse=True)
                                             for r in runs],
            "dtypes_seen_by_hvp": sorted({d for r in runs for d in r["dtypes_seen"]}),
            "versus_lossatlas": {
                la: {
                    "speedup_paired_median": statistics.median(pairs[(label, la)]),
                    "speedup_paired_all": pairs[(label, la)],
                    "speedup_ratio_of_medians": t["median_s"] / rec["lossatlas"][la]["time"]["median_s"],
                    "lossatlas_at_least_as_accurate": bool(la_err[la] <= statistics.median(worst)),
                }
                for la in LOSSATLAS_SETTINGS
            },
        }
    return rec


def run_case(i: int, case: dict, worker: TorchWorker, tmp: Path, data_file: Path, quick: bool) -> dict:
    import jax.numpy as jnp
    import numpy as np
    import torch

    import lossatlas
    from lossatlas.data import Dataset, targets_from_labels

    name = case["name"]
    p = n_params_of(case["widths"])
    print(f"[{name}] train in torch ({p} parameters)", file=sys.stderr, flush=True)
    ckpt = tmp / f"case{i}.pt"
    tr = worker.call("train", data_file=str(data_file), ckpt_file=str(ckpt), widths=case["widths"],
                     activation=case["activation"], seed=case["seed"], lr=TRAIN["lr"], steps=TRAIN["steps"])

    # The same model through the torch bridge.
    ck = torch.load(ckpt, weights_only=True)
    t_conv, net = _env.time_once(lambda: lossatlas.from_torch(ck))
    z = np.load(data_file)
    data = Dataset(jnp.asarray(z["X"]), jnp.asarray(targets_from_labels(z["labels"], N_CLASSES)))
    ls = lossatlas.Landscape(net, data, loss="cross_entropy")
    theta = ls.ravel()
    assert ls.n_params == p == tr["n_params"]
    loss, g = ls.value_and_grad(theta)
    g = np.asarray(g)

    # 1. same loss, gradient and an HVP as PyTorch's nn.CrossEntropyLoss
    v = np.random.default_rng(11).standard_normal(p)
    vfile = tmp / f"v{i}.npy"
    np.save(vfile, v)
    tw = worker.call("check", v_file=str(vfile))
    zt = np.load(tw["file"])
    hv = np.asarray(ls.hvp(theta, jnp.asarray(v)))
    check = {
        "theta_max_abs_diff_torch_vs_from_torch": float(np.max(np.abs(zt["theta"] - np.asarray(theta)))),
        "loss_torch": tw["loss"],
        "loss_lossatlas": float(loss),
        "loss_abs_diff": abs(tw["loss"] - float(loss)),
        "grad_max_abs_diff": float(np.max(np.abs(zt["grad"] - g))),
        "grad_max_abs": float(np.max(np.abs(g))),
        "hvp_max_abs_diff": float(np.max(np.abs(zt["hv"] - hv))),
        "hvp_relative_difference_2norm": float(np.linalg.norm(zt["hv"] - hv) / np.linalg.norm(hv)),
        "torch_param_order": tw["param_order"],
    }
    print(f"[{name}] loss {float(loss):.6g}, |Δloss| {check['loss_abs_diff']:.1e}, "
          f"max|Δgrad| {check['grad_max_abs_diff']:.1e}", file=sys.stderr, flush=True)

    # 2. truth
    print(f"[{name}] truth", file=sys.stderr, flush=True)
    ref = lanczos_reference(ls, theta)
    if p <= DENSE_MAX[quick]:
        truth = dense_truth(ls, theta)
        truth["eigsh_reference"] = {
            "rel_error_each_vs_dense": rel_errors_each(ref["eigenvalues_desc"], truth["eigenvalues_desc"]),
            "max_relative_residual": ref["max_relative_residual"],
            "matvecs": ref["matvecs"],
            "time_s": ref["time_s"],
        }
    else:
        truth = {
            "method": "tight SciPy eigsh reference on a plain-jit HVP (k=10, ncv=80, tol=0, which='LA'); "
            f"no dense Hessian at {p} parameters ({8 * p * p / 1e9:.0f} GB)",
            "eigenvalues_desc": ref["eigenvalues_desc"],
            "smallest_eigenvalue": ref["smallest_eigenvalue"],
            "max_relative_residual": ref["max_relative_residual"],
            "reference_matvecs": ref["matvecs"],
            "reference_time_s": ref["time_s"],
            "spectral_norm": max(abs(ref["eigenvalues_desc"][0]), abs(ref["smallest_eigenvalue"])),
        }
    check["hvp_max_abs_diff_over_norm_H_norm_v"] = check["hvp_max_abs_diff"] / (
        truth["spectral_norm"] * float(np.linalg.norm(v)))
    # PyHessian's power iteration finds the largest |λ|: both tools aim at the same 5 numbers
    # only if the 5 largest eigenvalues are also the 5 largest in magnitude.
    truth["top5_largest_are_top5_by_magnitude"] = bool(
        abs(truth["smallest_eigenvalue"]) < truth["eigenvalues_desc"][TOP_K - 1]
    )
    truth["gaps_relative"] = [
        (truth["eigenvalues_desc"][j] - truth["eigenvalues_desc"][j + 1]) / truth["eigenvalues_desc"][0]
        for j in range(TOP_K)
    ]

    # 3. top-5
    print(f"[{name}] top-5: lanczos_extreme vs PyHessian", file=sys.stderr, flush=True)
    reps = repeats_for(p, quick)
    top5 = measure_top5(ls, theta, worker, truth["eigenvalues_desc"], reps)

    # 4. CLI path
    print(f"[{name}] CLI import-torch + analyze", file=sys.stderr, flush=True)
    cli = cli_check(ckpt, data_file, tmp, truth["eigenvalues_desc"])

    return {
        "name": name,
        "widths": case["widths"],
        "activation": case["activation"],
        "bias": True,
        "n_params": p,
        "n_samples": int(z["X"].shape[0]),
        "torch_training": tr | {"seed": case["seed"], **TRAIN},
        "from_torch_s": t_conv,
        "loss": float(loss),
        "grad_norm_inf": float(np.max(np.abs(g))),
        "same_model_check": check,
        "truth": truth,
        "top5": top5,
        "repeats": reps,
        "cli": cli,
    }


# =============================================================================== figure
def plot(doc: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    cases = doc["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.6), squeeze=False)
    styles = {
        ("lossatlas", "default"): ("lossatlas Lanczos, 1e-10", "C0", "o"),
        ("lossatlas", "r1e-3"): ("lossatlas Lanczos, 1e-3", "C9", "s"),
        ("pyhessian", "default"): ("PyHessian, tol 1e-3", "C3", "^"),
        ("pyhessian", "tight"): ("PyHessian, tol 1e-6", "C1", "v"),
    }
    floor = 1e-17
    for ax, c in zip(axes[0], cases, strict=True):
        for (tool, label), (text, color, marker) in styles.items():
            r = c["top5"][tool][label]
            t = r["time"]
            err = max(r["max_rel_error"]["max"], floor)
            lo = max(r["max_rel_error"]["median"], floor)  # bar from the median to the worst run
            ax.errorbar([t["median_s"]], [err], xerr=[[t["median_s"] - t["min_s"]], [t["max_s"] - t["median_s"]]],
                        yerr=[[err - lo], [0.0]], fmt=marker, color=color, label=text, ms=7, capsize=2)
            left = (tool, label) == ("lossatlas", "r1e-3")  # usually beside the 1e-10 point, to its left
            ax.annotate(f"{r['matvecs_median']:.0f} HVPs", (t["median_s"], err), textcoords="offset points",
                        xytext=(-6, 6) if left else (6, -11 if tool == "lossatlas" else 5),
                        ha="right" if left else "left", fontsize=7, color=color)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_yscale("log")
        ax.set_ylim(3e-18, 1)
        ax.margins(x=0.2)
        ax.set_xlabel("wall time per top-5 call (s)")
        ax.set_title(f"{c['name']} ({c['n_params']} params)", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("worst rel. error of top-5 λ")
    axes[0][0].legend(fontsize=7, loc="center left")
    env = doc["environment"]
    load = f", load average {env['load_average_start'][0]:.0f} on {env['cpu_count']} cores" if env.get(
        "load_average_start") else ""
    fig.suptitle("Cross-entropy Hessian, top-5 eigenvalues: digits, PyTorch-trained MLPs, float64, "
                 f"pinned to one CPU{load}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def markdown_table(doc: dict) -> str:
    out = [
        "| model | p | loss | max abs Δ loss / grad vs torch | λ₁…λ₅ (truth) | lossatlas 1e-10 | HVPs | max rel err "
        "| lossatlas 1e-3 | HVPs | max rel err | PyHessian default | HVPs | max rel err | PyHessian tol 1e-6 | HVPs "
        "| max rel err | speed-up vs default (1e-10 / 1e-3) | speed-up vs tight (1e-10 / 1e-3) |",
        "|---|---:|---:|---|---|" + "---:|" * 12 + "---:|---:|",
    ]
    for c in doc["cases"]:
        t5, ch = c["top5"], c["same_model_check"]
        lam = ", ".join(f"{x:.5g}" for x in c["truth"]["eigenvalues_desc"][:TOP_K])
        cells = [c["name"], str(c["n_params"]), f"{c['loss']:.4g}",
                 f"{ch['loss_abs_diff']:.0e} / {ch['grad_max_abs_diff']:.0e}", lam]
        for tool, label in (("lossatlas", "default"), ("lossatlas", "r1e-3"), ("pyhessian", "default"),
                            ("pyhessian", "tight")):
            r = t5[tool][label]
            cells += [_fmt_t(r["time"]["median_s"]), f"{r['matvecs_median']:.0f}",
                      f"{r['max_rel_error']['max']:.0e}"]
        for ph in ("default", "tight"):
            v = t5["pyhessian"][ph]["versus_lossatlas"]
            cells.append(" / ".join(f"{v[la]['speedup_paired_median']:.1f}×"
                                    + ("" if v[la]["lossatlas_at_least_as_accurate"] else "*")
                                    for la in LOSSATLAS_SETTINGS))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("`*`: that lossatlas setting was less accurate than PyHessian's median.")
    return "\n".join(out)


# =============================================================================== driver
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, the two smaller models only")
    ap.add_argument("--out", default=str(_env.REPO / "benchmarks/results/cross_entropy.json"))
    ap.add_argument("--figure", default=str(_env.REPO / "docs/images/cross_entropy_top5.png"),
                    help="PNG to write ('' for none)")
    ap.add_argument("--plot", metavar="RESULTS.json", help="only redraw the figure from a results file")
    ap.add_argument("--threads", type=int, default=1, help="threads for XLA, BLAS and torch")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.plot:
        print(plot(json.loads(Path(args.plot).read_text()), Path(args.figure)))
        return 0
    _env.limit_threads(args.threads)
    if args.torch_worker:
        torch_worker(args.threads)
        return 0

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)  # the JAX process only reads the checkpoint with torch
    env = _env.environment(packages=("jax", "jaxlib", "numpy", "scipy", "equinox", "torch", "pyhessian",
                                     "scikit-learn", "matplotlib"))
    t_start = time.perf_counter()
    cases = CASES[:2] if args.quick else CASES
    results = []
    worker = TorchWorker(args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="lossatlas-ce-bench-") as tmpd:
            tmp = Path(tmpd)
            X, y = digits()
            data_file = tmp / "digits.npz"
            np.savez(data_file, X=X, labels=y)  # integer labels: lossatlas makes one-hot targets
            for i, case in enumerate(cases):
                results.append(run_case(i, case, worker, tmp, data_file, args.quick))
    finally:
        worker.close()
    env["load_average_end"] = _env.load_average()
    env["torch_worker"] = worker.info
    doc = {
        "schema": SCHEMA,
        "benchmark": "cross_entropy",
        "quick": args.quick,
        "environment": env,
        "setup": {
            "data": "sklearn.datasets.load_digits: X (1797, 64) standardised per pixel (constant pixels "
            "left at 0), integer labels 0..9",
            "models": "nn.Sequential of nn.Linear (with biases) and nn.Tanh / nn.ReLU, torch default init "
            "after torch.manual_seed(seed), float64",
            "training": f"full-batch Adam lr {TRAIN['lr']}, {TRAIN['steps']} steps, nn.CrossEntropyLoss(), float64",
            "bridge": "torch.save({'state_dict', 'architecture'}) -> torch.load(weights_only=True) -> "
            "lossatlas.from_torch -> Landscape(net, Dataset(X, targets_from_labels(labels, 10)), "
            "loss='cross_entropy')",
            "loss": "softmax cross-entropy, mean over samples (nn.CrossEntropyLoss() with class-index targets)",
            "dtypes": "float64 on both sides: torch default dtype float64 in the worker (PyHessian's "
            "torch.randn probes), float64 model and X, int64 labels; jax_enable_x64",
            "pyhessian": "pyhessian 0.1 on CPU via its own cuda=False argument; HVP and power-iteration "
            "counters wrapped around pyhessian.hessian.hessian_vector_product / orthnormal (maths untouched)",
            "lossatlas_settings": LOSSATLAS_SETTINGS,
            "pyhessian_settings": PYHESSIAN_SETTINGS,
            "error": "relative error of each of the top 5 eigenvalues (both lists sorted descending) against "
            "the truth: dense Hessian + eigh where p <= "
            f"{DENSE_MAX[args.quick]}, else a tight eigsh reference",
            "timing": "wall clock, after warm-up (compilation) runs; lossatlas and PyHessian runs alternate "
            "one by one (torch in its own process); speed-ups are medians of side-by-side ratios",
            "threads": args.threads,
        },
        "cases": results,
        "wall_time_s": time.perf_counter() - t_start,
    }
    out = _env.write_json(args.out, doc)
    print(markdown_table(doc))
    if args.figure:
        print(f"figure {plot(doc, Path(args.figure))}", file=sys.stderr)
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
