"""The census of end points: many random starts, descent, Newton polish, classification, orbits.

Protocol (Safran & Shamir, ICML 2018; Safran, Yehudai & Shamir, COLT 2021): a width-``k``
ReLU committee student against the teacher ``V = I_n``; starts ``W ~ N(0, 1/k)`` entrywise
(Xavier), gradient descent with step ``5/k``; here GD runs until ``||∇L||_∞ ≤ gd_tol`` and
Newton's method polishes every end point to ``||∇L||_∞ ≤ gtol`` (default 1e-10). End points
are grouped into orbits under ``S_k × S_n`` (:mod:`lossatlas.census._orbits`); one
representative per orbit is classified (:func:`lossatlas.solvers.classify` with global
minimum value 0). A start counts as *spurious* when it ends at a local minimum with positive
loss, *global* at a zero-loss minimum; ``spurious_fraction`` = spurious / starts.

GD can slow down next to saddles; an end point whose Hessian has a negative eigenvalue is
perturbed (noise of size `escape_noise`) and run again, up to `escape_rounds` times, as the
published GD, run to a much smaller gradient, would have escaped it. What remains is reported
in its own orbit with label ``strict_saddle``.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._config import check_x64
from .._errors import InputError
from ..landscape import Landscape
from ..solvers import Label, classify
from ._batch import batch_end_state, batch_gradient_descent, batch_newton_polish
from ._model import committee_landscape
from ._orbits import Isotropy, canonical_form, isotropy
from ._stats import clopper_pearson_interval, wilson_interval

_EPS = float(np.finfo(np.float64).eps)
_SPURIOUS = (Label.minimum, Label.degenerate_minimum)


class CensusMethod(enum.Enum):
    """How each start descends before the Newton polish."""

    gd = "gd"
    flow_newton = "flow-newton"


class IntervalMethod(enum.Enum):
    """Binomial 95% interval for the spurious fraction."""

    wilson = "wilson"
    clopper_pearson = "clopper-pearson"


@dataclasses.dataclass(frozen=True)
class Orbit:
    """One end point up to symmetry, with how many starts reached it.

    `W` is the canonical representative (rows: student neurons, columns: inputs). For the
    zero-loss global minima all end points are pooled into one entry (`points` counts the
    distinct canonical forms among the first 200 of them: for ``k > n`` the global minima form
    continua, and end points on them differ).
    """

    loss: float
    count: int
    label: Label
    min_hessian_eig: float
    index: int
    nullity: int
    grad_norm_inf: float
    isotropy: Isotropy
    W: np.ndarray
    points: int = 1

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {
            "loss": self.loss,
            "count": self.count,
            "label": self.label.value,
            "min_hessian_eig": self.min_hessian_eig,
            "isotropy": self.isotropy.description,
            "isotropy_order": self.isotropy.order,
            "index": self.index,
            "nullity": self.nullity,
            "grad_norm_inf": self.grad_norm_inf,
            "k_times_loss": self.loss * self.W.shape[0],
            "points": self.points,
            "W": self.W.tolist(),
        }


@dataclasses.dataclass(frozen=True)
class CensusResult:
    """Outcome of :func:`run_census`."""

    k: int
    n: int
    starts: int
    seed: int
    method: CensusMethod
    init_scale: float
    global_count: int
    spurious_count: int
    other_count: int
    unconverged: int
    spurious_interval: tuple[float, float]
    interval_method: IntervalMethod
    orbits: tuple[Orbit, ...]
    stats: dict

    @property
    def global_fraction(self) -> float:
        """Fraction of starts that ended at a zero-loss global minimum."""
        return self.global_count / self.starts

    @property
    def spurious_fraction(self) -> float:
        """Fraction of starts that ended at a spurious (positive-loss) local minimum."""
        return self.spurious_count / self.starts

    def to_record(self) -> dict:
        """JSON-ready dict (the ``lossatlas.census/1`` body)."""
        return {
            "k": self.k,
            "n": self.n,
            "starts": self.starts,
            "seed": self.seed,
            "method": self.method.value,
            "init_scale": self.init_scale,
            "global_fraction": self.global_fraction,
            "spurious_fraction": self.spurious_fraction,
            "spurious_interval": list(self.spurious_interval),
            "interval_method": self.interval_method.value,
            "interval_level": 0.95,
            "global_count": self.global_count,
            "spurious_count": self.spurious_count,
            "other_count": self.other_count,
            "unconverged": self.unconverged,
            "orbits": [o.to_record() for o in self.orbits],
            "stats": self.stats,
        }


def _enum(cls, value, what):
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        raise InputError(f"{what} must be one of {', '.join(m.value for m in cls)}, got {value!r}.") from None


def _descend_batched(ls, th0, *, k, gd_tol, gd_max_steps, gtol):
    gd = batch_gradient_descent(ls, th0, learning_rate=5.0 / k, gtol=gd_tol, max_steps=gd_max_steps)
    pol = batch_newton_polish(ls, gd.thetas, gtol=gtol)
    return pol.thetas, gd.steps, pol.steps


def _descend_single(ls, th0, *, k, method, gd_tol, gd_max_steps, gtol):
    from ..dynamics import optimise
    from ..pipeline import polish

    out, gd_steps, nt_steps = [], [], []
    for th in th0:
        if method is CensusMethod.flow_newton:
            end = polish(ls, jnp.asarray(th), method="flow-newton", handoff_tol=gd_tol, gtol=gtol,
                         classify_point=False)
            out.append(end.theta)
            gd_steps.append(0)
            nt_steps.append(sum(a.steps for a in end.attempts))
            continue
        run = optimise(ls, jnp.asarray(th), method="gd", learning_rate=5.0 / k, num_steps=gd_max_steps,
                       record_every=100, gtol=gd_tol)
        end = polish(ls, jnp.asarray(run.theta), method="saddle", gtol=gtol, classify_point=False)
        out.append(end.theta)
        gd_steps.append(run.num_steps)
        nt_steps.append(sum(a.steps for a in end.attempts))
    return np.stack(out), np.asarray(gd_steps), np.asarray(nt_steps)


def run_census(
    k: int,
    n: int,
    *,
    starts: int = 1000,
    seed: int = 0,
    method: CensusMethod | str = CensusMethod.gd,
    init_scale: float | None = None,
    batched: bool = True,
    batch_size: int = 2000,
    gd_tol: float = 1e-6,
    gd_max_steps: int = 200_000,
    gtol: float = 1e-10,
    escape_rounds: int = 2,
    escape_noise: float = 1e-3,
    orbit_tol: float = 1e-6,
    interval: IntervalMethod | str = IntervalMethod.wilson,
    progress: Callable[[int], None] | None = None,
) -> CensusResult:
    """Run the census of end points for a width-``k`` committee student and teacher ``I_n``.

    **Arguments:**

    - `starts`, `seed`: number of random starts and the seed of ``jax.random.PRNGKey``.
    - `method`: ``"gd"`` (gradient descent, step ``5/k``) or ``"flow-newton"`` (gradient flow,
      one start at a time); both end with a Newton polish to ``||∇L||_∞ ≤ gtol``.
    - `init_scale`: start entries ``N(0, s²)``; default ``s = 1/√k`` (Xavier).
    - `batched`: vectorise GD and Newton over `batch_size` starts (``vmap`` in one ``jit``);
      ``False`` runs :func:`lossatlas.dynamics.optimise` and
      :func:`lossatlas.solvers.find_critical_point` per start (the baseline).
    - `progress`: called with the number of starts finished after each batch.

    **Returns:** a :class:`CensusResult`.
    """
    check_x64()
    method = _enum(CensusMethod, method, "`method`")
    interval = _enum(IntervalMethod, interval, "`interval`")
    ls = committee_landscape(k, n)
    starts, seed = int(starts), int(seed)
    if starts < 1:
        raise InputError(f"`starts` must be >= 1, got {starts}.")
    scale = 1.0 / np.sqrt(k) if init_scale is None else float(init_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"the init scale must be a finite number > 0, got {init_scale}.")
    if not (0 < gtol < 1e-3 and gtol <= gd_tol):
        raise InputError(f"need 0 < gtol <= gd_tol and gtol < 1e-3, got gtol={gtol}, gd_tol={gd_tol}.")
    if int(batch_size) < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}.")
    check_census_size(starts, ls.n_params)
    t0 = time.perf_counter()
    draw = _start_draws(seed, starts, ls.n_params, scale)
    thetas = np.empty((starts, ls.n_params), dtype=np.float64)
    gd_steps = np.zeros(starts, np.int64)
    nt_steps = np.zeros(starts, np.int64)
    bs = int(batch_size) if batched and method is CensusMethod.gd else max(1, min(int(batch_size), 50))
    for lo in range(0, starts, bs):
        sl = slice(lo, min(starts, lo + bs))
        if batched and method is CensusMethod.gd:
            th, g, s = _descend_batched(ls, jnp.asarray(draw(sl)), k=k, gd_tol=gd_tol,
                                        gd_max_steps=gd_max_steps, gtol=gtol)
        else:
            th, g, s = _descend_single(ls, draw(sl), k=k, method=method, gd_tol=gd_tol,
                                       gd_max_steps=gd_max_steps, gtol=gtol)
        thetas[sl], gd_steps[sl], nt_steps[sl] = th, g, s
        if progress is not None:
            progress(sl.stop - sl.start)
    t_descent = time.perf_counter() - t0
    losses, gnorms, pd = _end_state_chunked(ls, thetas, bs)
    thetas, retried = _escape_saddles(ls, thetas, losses, gnorms, pd, k=k, rounds=escape_rounds,
                                      noise=escape_noise, seed=seed, gd_tol=gd_tol,
                                      gd_max_steps=gd_max_steps, gtol=gtol)
    n_fallback = _fallback_polish(ls, thetas, losses, gnorms, pd, gtol)
    converged = gnorms <= gtol
    t_orbits = time.perf_counter()
    orbits = _group(ls, thetas, losses, gnorms, converged, k, n, orbit_tol)
    t_end = time.perf_counter()
    global_count = sum(o.count for o in orbits if o.label is Label.global_minimum)
    spurious_count = sum(o.count for o in orbits if o.label in _SPURIOUS and o.loss > 0)
    unconverged = int(np.sum(~converged))
    other = starts - unconverged - global_count - spurious_count
    ci = (wilson_interval if interval is IntervalMethod.wilson else clopper_pearson_interval)(
        spurious_count, starts)
    stats = {
        "batched": bool(batched and method is CensusMethod.gd),
        "batch_size": bs,
        "gd_step_size": 5.0 / k,
        "gd_tol": gd_tol,
        "gtol": gtol,
        "gd_steps_median": float(np.median(gd_steps)),
        "gd_steps_max": int(np.max(gd_steps)),
        "newton_steps_max": int(np.max(nt_steps)),
        "saddle_escapes": int(retried),
        "fallback_polishes": int(n_fallback),
        "max_grad_norm_inf": float(np.max(gnorms)),
        "saddle_end_points": int(np.sum(~pd & converged)),
        "wall_time_descent": t_descent,
        "wall_time_orbits": t_end - t_orbits,
        "wall_time": t_end - t0,
        "starts_per_second": starts / (t_end - t0),
    }
    return CensusResult(int(k), int(n), starts, seed, method, scale, global_count, spurious_count, other,
                        unconverged, ci, interval, tuple(orbits), stats)


def _escape_saddles(ls, thetas, losses, gnorms, pd, *, k, rounds, noise, seed, gd_tol, gd_max_steps, gtol):
    """Kick end points whose Hessian is not positive definite and descend again (in place on
    `losses`, `gnorms`, `pd`)."""
    total = 0
    key = jax.random.PRNGKey(seed + 1)
    thetas = thetas.copy()
    for _ in range(int(rounds)):
        bad = np.flatnonzero(~pd)
        if bad.size == 0:
            break
        total += bad.size
        key, sub = jax.random.split(key)
        kick = noise * np.asarray(jax.random.normal(sub, (bad.size, thetas.shape[1]), dtype=jnp.float64))
        th, _, _ = _descend_batched(ls, jnp.asarray(thetas[bad] + kick), k=k, gd_tol=gd_tol,
                                    gd_max_steps=gd_max_steps, gtol=gtol)
        thetas[bad] = th
        losses[bad], gnorms[bad], pd[bad] = _end_state_chunked(ls, th, _END_STATE_ROWS)
    return thetas, total


#: Largest census run in one call: starts, and starts × parameters (the end points are kept in
#: memory, 8 bytes each: 10⁸ is 0.8 GB). Beyond: several calls with different seeds, counts added.
MAX_STARTS = 1_000_000
MAX_START_VALUES = 100_000_000
#: Starts are drawn at once up to this many (``normal(PRNGKey(seed), (starts, p))``, as always);
#: more are drawn per block of this many, block b from ``fold_in(PRNGKey(seed), b)``.
_DRAW_BLOCK = 100_000
#: Rows per end-state evaluation (each holds a dense Hessian) when no batch size is given.
_END_STATE_ROWS = 2000


def check_census_size(starts: int, n_params: int) -> None:
    """Refuse a census whose end points would not fit the limits `MAX_STARTS` and
    `MAX_START_VALUES` (InputError naming the limit and how to go beyond it)."""
    if starts > MAX_STARTS or starts * n_params > MAX_START_VALUES:
        raise InputError(
            f"{starts} starts of {n_params} parameters exceed the census limit of {MAX_STARTS:.0e} starts and "
            f"{MAX_START_VALUES:.0e} stored values (starts × k·n) per call; run several censuses with "
            "different seeds and add their counts.")


def _start_draws(seed: int, starts: int, p: int, scale: float):
    """``draw(slice) -> rows`` of the start points, drawn block by block (bounded memory)."""
    cache: dict[int, np.ndarray] = {}

    def block(b: int) -> np.ndarray:
        if b not in cache:
            cache.clear()
            if starts <= _DRAW_BLOCK:
                key, rows = jax.random.PRNGKey(seed), starts
            else:
                key = jax.random.fold_in(jax.random.PRNGKey(seed), b)
                rows = min(_DRAW_BLOCK, starts - b * _DRAW_BLOCK)
            cache[b] = np.asarray(scale * jax.random.normal(key, (rows, p), dtype=jnp.float64))
        return cache[b]

    def draw(sl: slice) -> np.ndarray:
        out = np.empty((sl.stop - sl.start, p), dtype=np.float64)
        i = sl.start
        while i < sl.stop:
            b, off = divmod(i, _DRAW_BLOCK)
            n = min(sl.stop - i, _DRAW_BLOCK - off)
            out[i - sl.start : i - sl.start + n] = block(b)[off : off + n]
            i += n
        return out

    return draw


def _end_state_chunked(ls, thetas, rows: int):
    """:func:`batch_end_state` over `rows` rows at a time (each row holds a dense Hessian)."""
    out = [batch_end_state(ls, jnp.asarray(thetas[i : i + rows])) for i in range(0, len(thetas), max(1, rows))]
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def _fallback_polish(ls, thetas, losses, gnorms, pd, gtol):
    """Polish stragglers one at a time with :func:`lossatlas.polish` (in place)."""
    from ..pipeline import polish

    bad = np.flatnonzero(gnorms > gtol)
    for i in bad:
        sol = polish(ls, jnp.asarray(thetas[i]), method="saddle", gtol=gtol, classify_point=False)
        if sol.grad_norm_inf < gnorms[i]:
            thetas[i] = sol.theta
            L, g, p = batch_end_state(ls, jnp.asarray(sol.theta[None, :]))
            losses[i], gnorms[i], pd[i] = L[0], g[0], p[0]
    return bad.size


def zero_loss_tolerance(ls: Landscape) -> float:
    """Losses below ``64 ε max(1, L(0))`` are zero: the closed form's cancellation error."""
    L0 = float(ls.loss(jnp.zeros(ls.n_params, dtype=jnp.float64)))
    return 64 * _EPS * max(1.0, L0)


def _group(ls, thetas, losses, gnorms, converged, k, n, tol) -> list[Orbit]:
    ztol = zero_loss_tolerance(ls)
    groups: dict[tuple, list] = {}
    zero = []
    for i in np.flatnonzero(converged):
        if losses[i] <= ztol:
            zero.append(i)
            continue
        W = thetas[i].reshape(k, n)
        C, Lab, _, _ = canonical_form(W, tol=tol)
        key = (Lab.tobytes(),)
        bucket = groups.setdefault(key, [])
        for entry in bucket:
            if np.max(np.abs(entry[0] - C)) <= 100 * tol:
                entry[1].append(i)
                break
        else:
            bucket.append((C, [i]))
    orbits = []
    if zero:
        rep = min(zero, key=lambda i: gnorms[i])
        forms = {canonical_form(thetas[i].reshape(k, n), tol=tol)[1].tobytes() for i in zero[:200]}
        orbits.append(_make_orbit(ls, thetas[rep], len(zero), k, n, tol, points=len(forms)))
    for bucket in groups.values():
        for _, members in bucket:
            rep = min(members, key=lambda i: gnorms[i])
            orbits.append(_make_orbit(ls, thetas[rep], len(members), k, n, tol))
    orbits.sort(key=lambda o: (o.loss, -o.count))
    return orbits


def _make_orbit(ls, theta, count, k, n, tol, points=1) -> Orbit:
    cl = classify(ls, jnp.asarray(theta), global_min_value=0.0)
    C = canonical_form(np.asarray(theta).reshape(k, n), tol=tol)[0]
    return Orbit(loss=cl.loss, count=int(count), label=cl.label,
                 min_hessian_eig=float(cl.eigenvalues[0]), index=cl.index, nullity=cl.nullity,
                 grad_norm_inf=cl.grad_norm_inf, isotropy=isotropy(C, tol=100 * tol), W=C, points=points)
