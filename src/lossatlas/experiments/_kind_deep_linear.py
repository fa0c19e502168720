"""``kind = "deep_linear"``: deep linear networks of several hidden-width profiles on Gaussian
inputs with targets from a random linear map plus noise; the end points' labels are checked
against the exact global minimum of reduced-rank regression (Achour et al. 2024)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset, save_data
from ._checks import check_int, spec_error
from ._flowruns import FlowKind
from ._kind_teacher_student import init_scale
from ._spec import RunSpec, SweepSpec


def dataset(spec: SweepSpec) -> Dataset:
    """The sweep's data: ``X ~ N(0, I)``, ``Y = X Aᵀ + noise``, all from ``data.seed``
    (``data.population`` does not apply: deep linear runs are on samples)."""
    dx, dy = spec.teacher.input_dim, spec.data.output_dim
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(spec.data.seed), 3)
    X = jax.random.normal(k1, (spec.data.n_samples, dx), jnp.float64)
    A = jax.random.normal(k2, (dy, dx), jnp.float64)
    Y = X @ A.T + spec.data.noise * jax.random.normal(k3, (spec.data.n_samples, dy), jnp.float64)
    return Dataset(X, Y)


class DeepLinear(FlowKind):
    name = "deep_linear"
    title = "deep linear networks: every end point labelled against the exact global minimum (Achour et al. 2024)"

    def parse_widths(self, widths, teacher):
        out = []
        for w in widths:
            if not isinstance(w, list | tuple) or not w:
                raise spec_error("student.widths",
                                 "deep_linear needs a list of hidden-width lists, e.g. [[3, 3], [4, 4, 4]].")
            out.append(tuple(check_int("student.widths", x, 1, 100_000) for x in w))
        return tuple(out)

    def validate(self, spec):
        depth = min(len(w) for w in spec.student.widths) + 1
        for f in spec.student.freeze:
            if not (f.startswith("W") and f[1:].isdigit() and 1 <= int(f[1:]) <= depth):
                raise spec_error("student.freeze", f"unknown array {f!r}: the shallowest network here has "
                                 f"W1 … W{depth} (no biases).")

    def run_key(self, spec):
        d = spec.to_dict()
        return {"teacher": d["teacher"], "data": d["data"],
                "student": {"init_scale": spec.student.init_scale, "freeze": list(spec.student.freeze)},
                "run": {"t1": spec.run.t1, "handoff_tol": spec.run.handoff_tol, "gtol": spec.run.gtol}}

    def build(self, run: RunSpec):
        from ..landscape import Landscape
        from ..models import deep_linear

        spec = run.spec
        key = jax.random.fold_in(jax.random.PRNGKey(run.seed), 7919)
        widths = (spec.teacher.input_dim, *[int(w) for w in run.width], spec.data.output_dim)
        s = init_scale(spec)
        ws = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            std = 1.0 / np.sqrt(a) if s == "xavier" else s
            ws.append(std * jax.random.normal(jax.random.fold_in(key, i), (b, a), jnp.float64))
        return Landscape(deep_linear(ws), dataset(spec), freeze=spec.student.freeze), None

    def global_min_value(self, run, ls):
        """Reduced-rank regression: ``(tr(YᵀY) − Σ_{i≤r} λ_i(YᵀPY)) / (2N)``, ``r`` the smallest width,
        ``P`` the projection onto the columns of X."""
        X, Y = np.asarray(ls.data.X), np.asarray(ls.data.Y)
        P = X @ np.linalg.pinv(X)
        lam = np.sort(np.linalg.eigvalsh(Y.T @ P @ Y))[::-1]
        r = min(min(run.width), X.shape[1], Y.shape[1])
        return float((np.sum(Y * Y) - np.sum(lam[:r])) / (2 * X.shape[0]))

    def export(self, spec, store):
        """``data.npz`` (the sweep's data) and, for every run, ``endpoints/<run_id>.npz``."""
        path = store.root / "data.npz"
        save_data(path, dataset(spec))
        return {"data": path, **super().export(spec, store)}
