"""A network trained in PyTorch, analysed and polished by lossatlas, and sent back.

1. Train a small tanh network in PyTorch, in float32 with Adam, the way a practitioner would.
2. Import the network and the data into lossatlas (float32 → float64, exactly, and reported).
3. Show that training stopped far from a critical point: gradient norm and Hessian index.
4. Polish the weights to a critical point with lossatlas's Newton solver and classify it.
5. Export the polished network back to PyTorch: the same function, the polished weights.
6. Compare lossatlas's top Hessian eigenvalues with PyHessian's on the same network, side by
   side with the time each took (skipped with a message if PyHessian is not installed).

Run:  python examples/torch_roundtrip.py [--quick]
Needs: pip install "lossatlas[torch]"; for step 6: pip install --no-deps pyhessian==0.1
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import lossatlas as la  # noqa: E402
from lossatlas.curvature import dense_hessian, dense_spectrum  # noqa: E402
from lossatlas.interop import load_torch, require_torch, save_torch  # noqa: E402
from lossatlas.solvers import NewtonTrustRegion, classify, find_critical_point  # noqa: E402

torch = require_torch()
nn = torch.nn


def train_in_torch(d: int, width: int, n: int, steps: int, seed: int = 0):
    """Noisy data from a random tanh teacher; a tanh student trained by Adam in float32."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    teacher_W1 = torch.randn(3, d, generator=g) / d**0.5
    teacher_W2 = torch.randn(1, 3, generator=g)
    Y = torch.tanh(X @ teacher_W1.T) @ teacher_W2.T + 0.1 * torch.randn(n, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, width), nn.Tanh(), nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((model(X) - Y) ** 2).sum() / n  # lossatlas's loss: 1/(2N) Σ ||f − y||²
        loss.backward()
        opt.step()
    return model, X, Y


def describe(title: str, ls: la.Landscape, theta) -> None:
    res = la.analyze_point(ls, theta)
    s = res.spectrum
    print(f"{title}: loss {res.loss:.10g}, ||∇L||_∞ = {res.grad_norm_inf:.2e}, "
          f"Hessian index {s.index}, nullity {s.nullity} (tolerance {s.tolerance:.1e}), "
          f"λ_min = {s.eigenvalues[0]:.3e}")


def pyhessian_top(model, X, Y, k: int):
    """PyHessian's top-k eigenvalues (power iteration with deflation, its default settings)."""
    from pyhessian import hessian

    n = X.shape[0]

    def criterion(out, y):
        return 0.5 * ((out - y) ** 2).sum() / n

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # PyHessian draws its start vectors in the default
    try:
        with warnings.catch_warnings():  # PyHessian's backward(create_graph=True) warns
            warnings.simplefilter("ignore", UserWarning)
            t0 = time.perf_counter()
            h = hessian(model, criterion, data=(X, Y), cuda=False)
            eigs, _ = h.eigenvalues(top_n=k)
            return np.sort(np.asarray(eigs))[::-1], time.perf_counter() - t0
    finally:
        torch.set_default_dtype(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller network (smoke test)")
    args = parser.parse_args()
    # The student has the teacher's width: Adam stops near a minimum that Newton then reaches.
    d, width, n, steps = (4, 3, 200, 800) if args.quick else (10, 3, 500, 2000)
    top_k = 3 if args.quick else 5
    torch.set_num_threads(1)  # fair timings on a shared machine
    work = Path(tempfile.mkdtemp(prefix="lossatlas-torch-example-"))

    # 1. Train in PyTorch and save as a PyTorch user would.
    model, X, Y = train_in_torch(d, width, n, steps)
    torch.save(model, work / "trained.pt")
    torch.save(torch.utils.data.TensorDataset(X, Y), work / "data.pt")
    print(f"trained in PyTorch (float32, Adam, {steps} steps): {d} → {width} → 1 tanh network")

    # 2. Import: both files hold float32 tensors; the conversion to float64 is exact.
    net_imp, data_imp = load_torch(work / "trained.pt"), load_torch(work / "data.pt")
    print("imported network:", net_imp.conversion.summary())
    print("imported data:   ", data_imp.conversion.summary())
    ls = la.Landscape(net_imp.network, data_imp.data)
    theta0 = ls.ravel()

    # 3. Where did training stop?
    describe("after training ", ls, theta0)

    # 4. Polish with Newton and classify.
    sol = find_critical_point(ls, theta0, NewtonTrustRegion(), max_steps=500, throw=False)
    print(f"Newton: {sol.result.name} after {sol.stats.num_steps} steps "
          f"({sol.stats.wall_time:.2f} s)")
    describe("after polishing", ls, sol.theta)
    cls = classify(ls, sol.theta)
    print(f"classified as: {cls.label.value} ({cls.reason})")

    # 5. Export back to PyTorch (float64) and check the function and the weights.
    polished = ls.unravel(jnp.asarray(sol.theta))
    save_torch(work / "polished.pt", polished)
    ckpt = torch.load(work / "polished.pt", weights_only=True)
    exported = nn.Sequential(nn.Linear(d, width), nn.Tanh(), nn.Linear(width, 1)).double()
    exported.load_state_dict(ckpt["state_dict"])
    flat = torch.cat([p.detach().reshape(-1) for p in exported.parameters()]).numpy()
    X64, Y64 = X.double(), Y.double()
    with torch.no_grad():
        out_torch = exported(X64).numpy()
    out_la = np.asarray(polished(jnp.asarray(X64.numpy())))
    print(f"exported to PyTorch: weights identical to the polished ones: "
          f"{np.array_equal(flat, np.asarray(sol.theta))}; max |f_torch − f_lossatlas| = "
          f"{np.max(np.abs(out_torch - out_la)):.1e}")

    # 6. Top Hessian eigenvalues at the polished network: lossatlas vs PyHessian.
    theta = jnp.asarray(sol.theta)
    t0 = time.perf_counter()
    lz = la.lanczos_extreme(ls, theta, k=top_k, which="largest")
    t_lanczos_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    lz = la.lanczos_extreme(ls, theta, k=top_k, which="largest")
    t_lanczos = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = dense_spectrum(dense_hessian(ls, theta)).eigenvalues[::-1][:top_k]
    t_dense = time.perf_counter() - t0
    ours = np.sort(lz.eigenvalues)[::-1][:top_k]
    try:
        import pyhessian  # noqa: F401
    except ImportError:
        theirs, t_pyh = None, None
        print("PyHessian is not installed (pip install --no-deps pyhessian==0.1): "
              "showing lossatlas only.")
    else:
        theirs, t_pyh = pyhessian_top(exported, X64, Y64, top_k)

    print(f"\ntop {top_k} Hessian eigenvalues at the polished network ({ls.n_params} parameters)")
    header = f"{'':>3} {'dense eigh':>14} {'lossatlas Lanczos':>18} {'rel. err':>9}"
    if theirs is not None:
        header += f" {'PyHessian':>14} {'rel. err':>9}"
    print(header)
    for i in range(top_k):
        row = (f"{i + 1:>3} {exact[i]:>14.8e} {ours[i]:>18.8e} "
               f"{abs(ours[i] - exact[i]) / abs(exact[i]):>9.1e}")
        if theirs is not None:
            row += f" {theirs[i]:>14.8e} {abs(theirs[i] - exact[i]) / abs(exact[i]):>9.1e}"
        print(row)
    print(f"\ntime: lossatlas Lanczos {t_lanczos:.3f} s ({lz.matvecs} HVPs; first call with "
          f"compilation {t_lanczos_first:.3f} s), dense Hessian + eigh {t_dense:.3f} s "
          "(compiled during the Newton solve)"
          + (f", PyHessian (power iteration, tol 1e-3) {t_pyh:.3f} s" if t_pyh else ""))


if __name__ == "__main__":
    main()
