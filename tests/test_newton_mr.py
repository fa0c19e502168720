"""The matrix-free Newton-MR solver, its MINRES inner solver and the Lanczos inertia bounds.

Truth used here: dense Hessians from ``jax.hessian`` and ``numpy.linalg.eigh`` (never the
library's HVP path), the dense trust-region solver's critical points, ``numpy.linalg.pinv`` for
minimum-length least-squares solutions, and exact neuron splitting (a wide network carrying a
narrow critical point, with a negative eigenvalue for a split ratio outside ``[0, 1]``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas._errors import InputError
from lossatlas.curvature import lanczos_inertia_bounds
from lossatlas.data import teacher_student
from lossatlas.landscape import Landscape
from lossatlas.models import MLP, init_mlp
from lossatlas.solvers import RESULTS, NewtonMR, NewtonTrustRegion, find_critical_point
from lossatlas.solvers._newton_mr import minres
from tolerances import TOL


def _hess(ls, theta):
    H = np.asarray(jax.hessian(ls.objective)(jnp.asarray(theta)))
    return 0.5 * (H + H.T)


def _split(net: MLP, neuron: int, gamma: float) -> MLP:
    """Duplicate hidden neuron `neuron`, its output weight shared as γ and 1 − γ."""
    W1, W2 = (np.asarray(w) for w in net.weights)
    W1s = np.vstack([W1, W1[neuron : neuron + 1]])
    W2s = np.hstack([W2, (1 - gamma) * W2[:, neuron : neuron + 1]])
    W2s[:, neuron] *= gamma
    return MLP((jnp.asarray(W1s), jnp.asarray(W2s)), None, net.activation)


@pytest.fixture(scope="module")
def empirical_point():
    """A non-degenerate local minimum of an erf net (N = 200), by the dense trust-region solver."""
    teacher = init_mlp(jax.random.PRNGKey(0), (4, 3, 1), "erf", bias=False, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(1), teacher, 200)
    ls = Landscape(init_mlp(jax.random.PRNGKey(2), (4, 2, 1), "erf", bias=False), data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=300)
    return ls, sol


@pytest.fixture(scope="module")
def population_point():
    """A local minimum of the closed-form erf population loss (width-2 student, width-4 teacher)."""
    teacher = init_mlp(jax.random.PRNGKey(3), (3, 4, 1), "erf", bias=False, scale=1.0)
    ls = Landscape(init_mlp(jax.random.PRNGKey(4), (3, 2, 1), "erf", bias=False), teacher=teacher)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=300)
    return ls, sol


@pytest.mark.parametrize("which", ["empirical_point", "population_point"])
def test_converges_to_the_dense_solvers_point(which, request):
    ls, ref = request.getfixturevalue(which)
    assert ref.success
    lam = np.linalg.eigvalsh(_hess(ls, ref.theta))
    assert np.min(np.abs(lam)) > 1e-6 * np.max(np.abs(lam))  # non-degenerate: an isolated point
    rng = np.random.default_rng(0)
    start = ref.theta + 1e-2 * rng.standard_normal(ref.theta.size)
    sol = find_critical_point(ls, start, NewtonMR(), max_steps=50)
    assert sol.grad_norm_inf <= TOL["critical_grad_inf"]
    # the same point: ||Δθ|| <= ||H⁻¹|| (||g_mr|| + ||g_ref||) with a margin
    bound = (np.linalg.norm(np.asarray(ls.grad(jnp.asarray(sol.theta)))) + np.linalg.norm(
        np.asarray(ls.grad(jnp.asarray(ref.theta))))) / np.min(np.abs(lam))
    assert np.linalg.norm(sol.theta - ref.theta) <= 10 * bound + TOL["newton_mr_point_atol"]
    st = sol.stats
    assert st.num_hessians == 0 and st.num_hvp > 0  # matrix-free
    assert st.details["inner_iterations"] == sum(st.details["inner_history"]) > 0
    assert len(st.history) == st.num_steps + 1 and st.wall_time > 0
    # index certified by Lanczos against the dense count
    inertia = st.details["inertia"]
    true_index = int(np.sum(lam < -inertia["tolerance"]))
    assert inertia["index_lower_bound"] <= true_index
    assert inertia["index_upper_bound"] is None or true_index <= inertia["index_upper_bound"]


def test_superlinear_convergence(empirical_point):
    ls, ref = empirical_point
    rng = np.random.default_rng(1)
    sol = find_critical_point(ls, ref.theta + 3e-2 * rng.standard_normal(ref.theta.size), NewtonMR(),
                              max_steps=50)
    h = np.array(sol.stats.history)
    # the last two steps that end well above the round-off floor (~1e-15 here; a step that lands
    # on it says nothing about the order): the slope of log g_{k+1} against log g_k is the order
    # of convergence (1: linear); g < 1, so log g_{k+1} / log g_k > 1 also says faster than linear
    tail = [(a, b) for a, b in zip(h[:-1], h[1:], strict=True) if b > 1e-13][-2:]
    assert len(tail) == 2, h
    x, y = np.log([a for a, _ in tail]), np.log([b for _, b in tail])
    assert (y[1] - y[0]) / (x[1] - x[0]) >= TOL["newton_mr_order_min"], h
    assert y[-1] / x[-1] >= TOL["newton_mr_order_min"], h


@pytest.mark.parametrize("gamma", [1.6, -0.5])
def test_keeps_a_strict_saddle(empirical_point, gamma):
    """A split neuron with γ outside [0, 1]: a strict saddle (checked by dense eigh) on a line of
    critical points. Newton-MR from a nearby point stays at the saddle's loss and index."""
    ls, ref = empirical_point
    wide = _split(ls.unravel(jnp.asarray(ref.theta)), 0, gamma)
    lsw = Landscape(wide, ls.data)
    theta = np.asarray(lsw.ravel())
    lam = np.linalg.eigvalsh(_hess(lsw, theta))
    assert lam[0] < -1e-6 * np.max(np.abs(lam))  # strict saddle
    rng = np.random.default_rng(2)
    sol = find_critical_point(lsw, theta + 1e-4 * rng.standard_normal(theta.size), NewtonMR(), max_steps=50)
    assert sol.grad_norm_inf <= TOL["critical_grad_inf"]
    assert sol.loss == pytest.approx(ref.loss, rel=1e-8)
    lam_end = np.linalg.eigvalsh(_hess(lsw, sol.theta))
    assert lam_end[0] < -1e-6 * np.max(np.abs(lam_end))  # still a strict saddle, not a minimum
    assert sol.stats.details["npc_steps"] >= 1  # MINRES certified negative curvature on the way
    assert sol.stats.details["min_ritz_value"] < 0
    inertia = sol.stats.details["inertia"]
    tol = inertia["tolerance"]
    assert 1 <= inertia["index_lower_bound"] <= int(np.sum(lam_end < -tol))


# ----------------------------------------------------------------------------- MINRES
def _singular_indefinite(n=40, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([rng.uniform(-4, -0.1, 10), np.zeros(6), rng.uniform(0.05, 3, n - 16)])
    return (Q * lam) @ Q.T, rng


def test_minres_gives_the_minimum_length_least_squares_solution():
    A, rng = _singular_indefinite()
    b = rng.standard_normal(A.shape[0])  # has a component in the kernel: incompatible
    out = minres(lambda v: A @ v, b, rtol=0.0)
    ref = np.linalg.pinv(A, rcond=1e-12) @ b
    assert out.reason == "invariant"
    np.testing.assert_allclose(out.x, ref, rtol=0, atol=TOL["minres_pinv_atol"] * np.linalg.norm(ref))
    assert np.allclose(np.linalg.lstsq(A, b, rcond=1e-12)[0], ref)  # numpy's two routes agree
    np.testing.assert_allclose(out.Ax, A @ out.x, atol=TOL["minres_pinv_atol"] * np.linalg.norm(b))
    assert out.residual_norm == pytest.approx(np.linalg.norm(b - A @ ref), rel=1e-10)
    # a compatible right-hand side: the minimum-length exact solution
    bc = A @ rng.standard_normal(A.shape[0])
    out = minres(lambda v: A @ v, bc, rtol=1e-14)
    np.testing.assert_allclose(out.x, np.linalg.pinv(A, rcond=1e-12) @ bc, rtol=0,
                               atol=TOL["minres_pinv_atol"] * np.linalg.norm(out.x))


def test_minres_truncated_is_a_descent_direction_and_detects_negative_curvature():
    A, rng = _singular_indefinite(seed=1)
    b = rng.standard_normal(A.shape[0])
    lam_min = np.linalg.eigvalsh(A)[0]
    for k in range(1, 12):
        out = minres(lambda v: A @ v, b, rtol=0.0, max_iter=k)
        assert out.iterations == k
        # MINRES' residual is orthogonal to A K_k: <b, Ax> = ||Ax||² (so -<Hg, s> > 0 in Newton-MR)
        assert b @ out.Ax == pytest.approx(out.Ax @ out.Ax, rel=1e-10)
        assert out.min_ritz >= lam_min - 1e-12  # interlacing
    assert out.npc_iteration is not None  # r_{k-1}ᵀ A r_{k-1} <= 0 found
    v = rng.standard_normal(A.shape[0])
    spd = A @ A + np.eye(A.shape[0])
    assert minres(lambda x: spd @ x, v, rtol=1e-12).npc_iteration is None
    neg = minres(lambda x: -spd @ x, v, rtol=1e-12)
    assert neg.npc_iteration == 1  # bᵀAb < 0 at once


# ----------------------------------------------------------------------------- inertia
@pytest.mark.parametrize("k, complete", [(4, False), (12, False), (40, True)])
def test_inertia_bounds_bracket_the_dense_counts(k, complete):
    """A random point of a 32-parameter net whose Hessian has 14 negative eigenvalues."""
    teacher = init_mlp(jax.random.PRNGKey(5), (3, 5, 2), "tanh", bias=True, scale=3.0)
    data = teacher_student(jax.random.PRNGKey(6), teacher, 60)
    ls = Landscape(init_mlp(jax.random.PRNGKey(7), (3, 5, 2), "tanh", bias=True, scale=0.5), data)
    theta = ls.ravel()
    assert ls.n_params == 32
    ib = lanczos_inertia_bounds(ls, theta, k=k, grad_norm=0.0)  # the inertia of H itself
    lam = np.linalg.eigvalsh(_hess(ls, theta))
    index = int(np.sum(lam < -ib.tolerance))
    nullity = int(np.sum(np.abs(lam) <= ib.tolerance))
    assert index == 14  # (independent of the library) more than the smaller k can certify
    assert ib.index_lower_bound <= index and ib.nullity_lower_bound <= nullity
    assert lam[0] <= ib.min_eig + 1e-12 and lam[-1] >= ib.max_eig - 1e-12
    assert ib.min_eig - lam[0] <= ib.min_eig_residual + 1e-12 * lam[-1]
    assert ib.complete is complete
    if complete:
        assert ib.index_lower_bound == index == ib.index_upper_bound
        assert ib.nullity_upper_bound is not None and ib.nullity_lower_bound <= nullity <= ib.nullity_upper_bound
    else:
        assert ib.index_upper_bound is None and ib.nullity_upper_bound is None
        assert ib.index_lower_bound == min(k, index)  # the k smallest Ritz values converged
    rec = ib.to_record()
    assert rec["index_lower_bound"] == ib.index_lower_bound and "index_upper_bound" in rec


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("kwargs", [dict(gtol=-1.0), dict(max_inner=0), dict(eta_max=1.0), dict(armijo=0.6),
                                    dict(backtrack=1.0), dict(max_time=0.0), dict(max_time=float("nan")),
                                    dict(escape_window=10), dict(inertia_k=-1), dict(progress=3)])
def test_bad_hyperparameters(kwargs):
    with pytest.raises(InputError):
        NewtonMR(**kwargs)


def test_time_budget_and_progress(empirical_point):
    ls, ref = empirical_point
    calls = []
    solver = NewtonMR(max_time=1e-9, progress=lambda k, L, g: calls.append((k, L, g)))
    sol = find_critical_point(ls, ref.theta + 1e-2, solver, max_steps=50, throw=False)
    assert sol.result is RESULTS.time_limit_reached and not sol.success
    assert calls and calls[0][0] == 0 and calls[0][2] == pytest.approx(sol.stats.history[0])
    calls.clear()
    sol = find_critical_point(ls, ref.theta + 1e-2, NewtonMR(progress=lambda *a: calls.append(a)), max_steps=1,
                              throw=False)
    assert sol.result is RESULTS.max_steps_reached and [c[0] for c in calls] == [0, 1]


# ----------------------------------------------------------------------------- negative curvature, descent
def test_minres_negative_curvature_direction_stop_and_record():
    """The residual r_{k−1} returned at the detection is a direction of non-positive curvature and
    of descent for b = −g (checked with the dense matrix); ``stop`` returns x_{k−1}, ``record`` goes
    on to the same solution as ``continue``."""
    A, rng = _singular_indefinite(seed=3)
    b = rng.standard_normal(A.shape[0])
    cont = minres(lambda v: A @ v, b, rtol=1e-12)
    rec = minres(lambda v: A @ v, b, rtol=1e-12, npc="record")
    stop = minres(lambda v: A @ v, b, rtol=1e-12, npc="stop")
    k = stop.npc_iteration
    assert k is not None and stop.reason == "npc" and stop.iterations == k == rec.npc_iteration == cont.npc_iteration
    r = stop.npc_direction
    assert r @ A @ r <= 1e-12 * np.linalg.norm(A, 2) * (r @ r)  # non-positive curvature
    assert stop.npc_curvature == pytest.approx((r @ A @ r) / (r @ r), rel=1e-8, abs=1e-12)
    assert r @ b == pytest.approx(r @ r, rel=1e-10)  # <r, b> = ||r||²: descent for b = −∇L
    # r = b − A x_{k−1}, with x_{k−1} the MINRES iterate after k − 1 steps
    prev = minres(lambda v: A @ v, b, rtol=0.0, max_iter=k - 1) if k > 1 else None
    x_prev = prev.x if prev is not None else np.zeros_like(b)
    np.testing.assert_allclose(stop.x, x_prev, atol=1e-10 * max(np.linalg.norm(x_prev), 1.0))
    np.testing.assert_allclose(r, b - A @ x_prev, atol=1e-10 * np.linalg.norm(b))
    np.testing.assert_allclose(stop.Ax, A @ stop.x, atol=1e-10 * np.linalg.norm(b))
    np.testing.assert_allclose(rec.npc_direction, r, atol=1e-12 * np.linalg.norm(b))
    np.testing.assert_allclose(rec.x, cont.x, atol=1e-12 * np.linalg.norm(cont.x))
    assert cont.npc_direction is None
    with pytest.raises(InputError):
        minres(lambda v: A @ v, b, npc="maybe")


def test_descent_reaches_a_minimum_where_the_merit_search_stalls():
    """From a random start (far from any critical point) the line search on ||∇L||² alone stalls
    among saddles; the descent steps (Newton-MR for minimisation) reach a minimum, certified by
    the dense Hessian."""
    teacher = init_mlp(jax.random.PRNGKey(5), (5, 6, 2), "tanh", bias=True, scale=3.0)
    data = teacher_student(jax.random.PRNGKey(6), teacher, 100)
    ls = Landscape(init_mlp(jax.random.PRNGKey(11), (5, 4, 2), "tanh", bias=True, scale=1.0), data, lam=1e-3)
    theta0 = ls.ravel()
    sol = find_critical_point(ls, theta0, NewtonMR(inertia_k=0), max_steps=100)
    assert sol.grad_norm_inf <= TOL["critical_grad_inf"]
    lam = np.linalg.eigvalsh(_hess(ls, sol.theta))
    assert lam[0] > 1e-6 * lam[-1]  # a non-degenerate minimum
    assert sol.loss < float(ls.loss(theta0))
    kinds = sol.stats.details["step_kinds"]
    assert "descent" in kinds or "npc" in kinds
    assert set(kinds) <= {"newton", "descent", "npc", "merit"}
    merit = find_critical_point(ls, theta0, NewtonMR(descent=False, inertia_k=0), max_steps=100, throw=False)
    assert not merit.success and set(merit.stats.details["step_kinds"]) <= {"newton", "merit"}


# ----------------------------------------------------------------------------- classification above the dense limit
@pytest.mark.parametrize("gamma", [None, 1.6])
def test_lanczos_classification_says_bounds(empirical_point, gamma):
    """Above the dense limit (forced here with ``dense_limit=0``) classify sees only Lanczos' extreme
    Ritz values: the record names the index and nullity as bounds, and the label and the bounds
    agree with the dense Hessian (a minimum; a strict saddle of a split network)."""
    from lossatlas.solvers import Label, classify

    ls, ref = empirical_point
    if gamma is not None:  # the strict saddle of test_keeps_a_strict_saddle, polished
        ls = Landscape(_split(ls.unravel(jnp.asarray(ref.theta)), 0, gamma), ls.data)
        theta = np.asarray(find_critical_point(ls, ls.ravel(), NewtonMR(inertia_k=0), max_steps=50).theta)
    else:
        theta = np.asarray(ref.theta)
    dense = classify(ls, theta, grad_tol=1e-10)
    c = classify(ls, theta, grad_tol=1e-10, dense_limit=0, lanczos_k=3)
    assert dense.complete and not c.complete and c.evidence.method == "lanczos"
    assert c.label is dense.label is (Label.minimum if gamma is None else Label.strict_saddle)
    lam = np.linalg.eigvalsh(_hess(ls, theta))
    true_index = int(np.sum(lam < -c.tolerance))
    rec = c.to_record()
    assert "index" not in rec and "nullity" not in rec
    assert rec["index_upper_bound"] is None and rec["nullity_upper_bound"] is None
    assert 0 <= rec["index_lower_bound"] <= true_index and rec["nullity_lower_bound"] == 0
    assert (rec["index_lower_bound"] >= 1) is (gamma is not None)
    assert "not certified" in c.reason if gamma is None else "at least" in c.reason
    assert "index" in dense.to_record() and "index_lower_bound" not in dense.to_record()


def test_lanczos_time_budget():
    """``max_time`` ends Lanczos after its first block of steps; the pairs are returned with their
    residuals, and interlacing still bounds the extremes."""
    from lossatlas.curvature import lanczos_extreme

    teacher = init_mlp(jax.random.PRNGKey(9), (6, 3, 2), "tanh", scale=3.0)
    ls = Landscape(init_mlp(jax.random.PRNGKey(7), (6, 8, 2), "tanh", bias=True, scale=0.5),
                   teacher_student(jax.random.PRNGKey(8), teacher, 60))
    theta = ls.ravel()
    quick = lanczos_extreme(ls, theta, k=2, max_time=0.0)
    full = lanczos_extreme(ls, theta, k=2)
    lam = np.linalg.eigvalsh(_hess(ls, theta))
    assert quick.matvecs == 20 < full.matvecs  # the first check: max(2 · 4 + 1, 20) steps
    assert np.max(quick.residuals) > np.max(full.residuals)
    assert quick.eigenvalues[0] >= lam[0] - 1e-12 and quick.eigenvalues[-1] <= lam[-1] + 1e-12
    with pytest.raises(InputError):
        lanczos_extreme(ls, theta, k=2, max_time=-1.0)


def test_minres_deadline_returns_the_krylov_minimiser_so_far():
    """`expired` ends the solve after the iteration it first says so; the iterate is still the
    minimum-residual point of the Krylov space built so far: after one iteration, the
    minimiser of ``||b − t A b||`` over ``t``, ``t = bᵀAb / ||Ab||²`` (computed directly)."""
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    A = Q @ np.diag(np.linspace(-2.0, 5.0, 30)) @ Q.T
    b = rng.standard_normal(30)
    out = minres(lambda v: A @ v, b, rtol=1e-14, expired=lambda: True)
    assert out.reason == "time_limit" and out.iterations == 1
    Ab = A @ b
    np.testing.assert_allclose(out.x, (b @ Ab) / (Ab @ Ab) * b, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    np.testing.assert_allclose(out.Ax, A @ out.x, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
