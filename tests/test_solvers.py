"""Critical-point solvers, gradient flow and classification against independent truth.

Truth used here: dense Hessians from ``jax.hessian`` (not the library's HVP path), closed-form
least squares, the closed-form gradient-descent iterates of a quadratic, the exact order of
the loss along explicit curves at ``W = 0`` of deep linear networks, and exact splitting of
neurons.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.data import Dataset, teacher_student
from lossatlas.dynamics import (
    ConvergenceKind,
    fit_convergence_law,
    gradient_flow,
    optimise,
)
from lossatlas.landscape import Landscape
from lossatlas.models import MLP, deep_linear, init_mlp
from lossatlas.pipeline import polish
from lossatlas.solvers import (
    RESULTS,
    Label,
    NewtonTrustRegion,
    SaddleNewton,
    classify,
    find_critical_point,
)
from tolerances import TOL


def _hess(ls, theta):
    H = np.asarray(jax.jit(jax.hessian(ls.objective))(jnp.asarray(theta)))
    return 0.5 * (H + H.T)


@pytest.fixture(scope="module")
def narrow_min():
    """A non-degenerate local minimum: width-2 erf student of a width-3 erf teacher (N = 200)."""
    teacher = init_mlp(jax.random.PRNGKey(0), (4, 3, 1), "erf", bias=False, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(1), teacher, 200)
    student = init_mlp(jax.random.PRNGKey(2), (4, 2, 1), "erf", bias=False)
    ls = Landscape(student, data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=300)
    return ls, sol


def test_newton_converges_quadratically(narrow_min):
    ls, sol = narrow_min
    assert sol.success and sol.grad_norm_inf <= TOL["critical_grad_inf"]
    lam = np.linalg.eigvalsh(_hess(ls, sol.theta))
    assert lam[0] > 0  # a non-degenerate minimum (independent dense Hessian)
    h = np.array(sol.stats.history)
    # the asymptotic regime: the last two steps above the round-off floor; the order is the
    # slope of log g_{k+1} against log g_k (2 for Newton, 1 for linear convergence)
    tail = [(a, b) for a, b in zip(h[:-1], h[1:], strict=True) if b > 1e-15][-2:]
    assert len(tail) == 2, h
    x, y = np.log([a for a, _ in tail]), np.log([b for _, b in tail])
    slope = (y[1] - y[0]) / (x[1] - x[0])
    assert slope >= TOL["newton_order_min"], (slope, h)


@pytest.mark.slow  # the default run keeps a faster case of the same check (issue 17: suite under 5 min)
def test_flow_endpoint_equals_polished_point(narrow_min):
    ls, sol = narrow_min
    rng = np.random.default_rng(3)
    start = sol.theta + 0.05 * rng.standard_normal(sol.theta.size)
    fp = polish(ls, start, t1=1e6, handoff_tol=1e-9)
    assert fp.converged and fp.grad_norm_inf <= TOL["critical_grad_inf"]
    # same critical point as the Newton minimiser
    assert np.max(np.abs(fp.theta - sol.theta)) <= 1e-9
    # the flow's end point is within Newton's estimate ||g|| / λ_min of the critical point
    lam_min = np.linalg.eigvalsh(_hess(ls, sol.theta))[0]
    g_flow = np.linalg.norm(np.asarray(ls.grad(jnp.asarray(fp.flow.theta))))
    assert np.linalg.norm(fp.flow.theta - fp.theta) <= 2.0 * g_flow / lam_min + 1e-12
    # the flow's loss never increases (gradient flow is a descent dynamics)
    assert np.all(np.diff(fp.flow.losses) <= 1e-12 * max(1.0, fp.flow.losses[0]))


def test_flow_rate_matches_smallest_eigenvalue(narrow_min):
    """Near a non-degenerate minimum the displacement decays like exp(−λ_min t)."""
    ls, sol = narrow_min
    lam, V = np.linalg.eigh(_hess(ls, sol.theta))
    start = sol.theta + 1e-3 * V[:, 0] + 1e-3 * V[:, -1]
    flow = gradient_flow(ls, start, t1=20.0 / lam[0], solver="bdf", rtol=1e-12, atol=1e-15,
                         steady_tol=0.0, n_save=120)
    dist = np.linalg.norm(flow.thetas - sol.theta[None, :], axis=1)
    law = fit_convergence_law(flow.ts, dist, floor=1e-12)
    assert law.kind is ConvergenceKind.exponential
    assert law.rate == pytest.approx(lam[0], rel=TOL["flow_rate_rtol"])


def test_bdf_flow_survives_scipy_event_root_failure(narrow_min, monkeypatch):
    """SciPy's event root finder can raise "f(a) and f(b) must have different signs"; the flow
    then integrates without the event and stops at the first saved time that is steady."""
    import scipy.integrate

    ls, sol = narrow_min
    real = scipy.integrate.solve_ivp

    def flaky(*args, **kw):
        if kw.get("events") is not None:
            raise ValueError("f(a) and f(b) must have different signs")
        return real(*args, **kw)

    monkeypatch.setattr(scipy.integrate, "solve_ivp", flaky)
    start = sol.theta + 1e-2
    flow = gradient_flow(ls, start, t1=1e4, solver="bdf", steady_tol=1e-8, n_save=200)
    assert flow.status.name == "steady_state"
    g = np.asarray(ls.grad(jnp.asarray(flow.thetas[-1])))
    assert np.max(np.abs(g)) <= 1e-8
    # the point before the last saved one was not yet steady (it stopped at the first)
    g_prev = np.asarray(ls.grad(jnp.asarray(flow.thetas[-2])))
    assert np.max(np.abs(g_prev)) > 1e-8


@pytest.mark.slow  # the default run keeps a faster case of the same check (issue 17: suite under 5 min)
def test_algebraic_law_on_degenerate_minimum():
    """f = w2 w1 x with y = 0 from a balanced start: L ∝ a⁴, a ~ t^{-1/2}, so L ~ t^{-2}."""
    X = jnp.ones((1, 1))
    net = deep_linear([jnp.full((1, 1), 0.5), jnp.full((1, 1), 0.5)])
    ls = Landscape(net, Dataset(X, jnp.zeros((1, 1))))
    flow = gradient_flow(ls, ls.ravel(), t1=1e5, solver="tsit5", rtol=1e-10, atol=1e-14,
                         steady_tol=0.0, n_save=80)
    law = fit_convergence_law(flow.ts, flow.losses)
    assert law.kind is ConvergenceKind.algebraic
    assert law.exponent == pytest.approx(2.0, rel=0.02)


def test_gradient_descent_matches_closed_form_iterates():
    """GD on least squares (a one-layer linear net) against (I − ηH)^k(θ0 − θ*) + θ*."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    net = deep_linear([jnp.asarray(rng.standard_normal((2, 3)))])
    ls = Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta0 = np.asarray(ls.ravel())
    H = np.kron(np.eye(2), X.T @ X / 30)  # row-major W: θ = vec_rows(W)
    W_star = np.linalg.lstsq(X, Y, rcond=None)[0].T
    eta = 0.1
    run = optimise(ls, theta0, method="gd", learning_rate=eta, num_steps=200, record_every=50)
    M = np.linalg.matrix_power(np.eye(6) - eta * H, 200)
    expected = W_star.ravel() + M @ (theta0 - W_star.ravel())
    np.testing.assert_allclose(run.theta, expected, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


def test_chunked_flow_of_small_chunks_follows_the_closed_form(monkeypatch):
    """A budgeted flow is integrated in chunks that carry the solver's state over; forced down to
    the smallest chunk (as for an expensive 10⁵-parameter gradient), it must still follow the
    exact flow of least squares, θ(t) = θ* + exp(−Ht)(θ0 − θ*), across a hundred chunk seams."""
    from scipy.linalg import expm

    from lossatlas.dynamics import _flow

    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    net = deep_linear([jnp.asarray(rng.standard_normal((2, 3)))])
    ls = Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta0 = np.asarray(ls.ravel())
    H = np.kron(np.eye(2), X.T @ X / 30)
    theta_star = np.linalg.lstsq(X, Y, rcond=None)[0].T.ravel()
    assert _flow._chunk_steps(ls, "tsit5") == _flow._CHUNK_STEPS  # a cheap gradient
    monkeypatch.setattr(_flow, "_CHUNK_WORK", 0.0)  # every chunk as small as allowed
    sizes = []
    real = _flow._diffrax_chunk

    def spy(*args):
        sizes.append(args[-1])
        return real(*args)

    monkeypatch.setattr(_flow, "_diffrax_chunk", spy)
    flow = gradient_flow(ls, theta0, t1=50.0, solver="tsit5", rtol=1e-12, atol=1e-14, steady_tol=0.0,
                         n_save=40, max_time=600.0)
    assert flow.status.name == "reached_t1" and flow.t_final == pytest.approx(50.0)
    assert set(sizes) == {_flow._MIN_CHUNK_STEPS} and len(sizes) >= 20
    for t, th in zip(flow.ts, flow.thetas, strict=True):
        exact = theta_star + expm(-H * t) @ (theta0 - theta_star)
        np.testing.assert_allclose(th, exact, rtol=0, atol=1e-9)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_residual_error_bound_covers_the_float64_error(activation):
    """The forward-error bound behind the zero-loss tolerance, against the residuals of the same
    network recomputed in extended precision (NumPy longdouble, an independent code path): the
    float64 residual's error never exceeds the bound; and with targets set to the network's own
    extended-precision outputs (zero residual in exact arithmetic) the float64 loss lies below
    the tolerance at θ."""
    from lossatlas.models import init_mlp
    from lossatlas.solvers._classify import _residual_error_bound, zero_loss_tolerance

    if np.finfo(np.longdouble).eps >= 1e-17:
        pytest.skip("this platform's longdouble is no more precise than float64")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 16))
    net = init_mlp(jax.random.PRNGKey(3), (16, 128, 64, 5), activation, bias=True, scale=1.0)

    def forward_ld(X):
        h = np.asarray(X, dtype=np.longdouble)
        for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            h = h @ np.asarray(w, dtype=np.longdouble).T + np.asarray(b, dtype=np.longdouble)
            if i < len(net.weights) - 1:
                h = np.tanh(h) if activation == "tanh" else np.maximum(h, 0)
        return h

    exact = forward_ld(X)
    Y = np.asarray(exact, dtype=np.float64)  # targets: f(X) rounded once
    r64 = np.asarray(net(jnp.asarray(X))) - Y
    r_exact = exact - np.asarray(Y, dtype=np.longdouble)
    bound = np.asarray(_residual_error_bound(net, jnp.asarray(X), jnp.asarray(Y)))
    err = np.abs(np.asarray(r64, dtype=np.longdouble) - r_exact).astype(np.float64)
    assert np.all(err <= bound) and np.max(err) > 0
    ls = Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta = ls.ravel()
    assert 0 < float(ls.loss(theta)) <= zero_loss_tolerance(ls, theta)
    assert zero_loss_tolerance(ls, theta) >= zero_loss_tolerance(ls)


@pytest.mark.parametrize("depth", [2, 3, pytest.param(4, marks=pytest.mark.slow)])
def test_deep_linear_origin(depth):
    """W = 0: a strict saddle at depth 2, a non-strict saddle of order `depth` beyond."""
    rng = np.random.default_rng(depth)
    X = rng.standard_normal((20, 3))
    Y = X @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((20, 2))
    ws = [jnp.zeros((3, 3))] * (depth - 1) + [jnp.zeros((2, 3))]
    ls = Landscape(deep_linear(ws), Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta = np.zeros(ls.n_params)
    c = classify(ls, theta)
    lam = np.linalg.eigvalsh(_hess(ls, theta))
    if depth == 2:
        assert c.label is Label.strict_saddle
        assert lam[0] < -c.tolerance and c.index == int(np.sum(lam < -c.tolerance))
        v = c.direction
        assert v @ _hess(ls, theta) @ v == pytest.approx(lam[0], rel=1e-10)
    else:
        assert c.label is Label.non_strict_saddle
        assert c.index == 0 and lam[0] >= -c.tolerance and c.nullity == ls.n_params
        assert c.order == depth
        # independent check of the certificate: the loss along θ + t v decreases like t^depth
        L0 = float(ls.loss(jnp.asarray(theta)))
        ts = np.geomspace(1e-3, 1e-2, 5)
        drops = [L0 - float(ls.loss(jnp.asarray(theta + t * c.direction + t * t * c.curvature_correction)))
                 for t in ts]
        assert all(d > 0 for d in drops)
        slope = np.polyfit(np.log(ts), np.log(drops), 1)[0]
        assert slope == pytest.approx(depth, abs=TOL["escape_order_fit_atol"])


def _ls_deep_linear_minimum(rng, widths, X, Y):
    """A global minimiser of a deep linear net with hidden widths ≥ min(d_x, d_y): any
    factorisation of the least-squares matrix."""
    W = np.linalg.lstsq(X, Y, rcond=None)[0].T
    mats = []
    prod = np.eye(widths[0])
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        A = rng.standard_normal((b, a))
        mats.append(A)
        prod = A @ prod
    mats.append(W @ np.linalg.pinv(prod))
    return mats, float(0.5 * np.mean(np.sum((X @ W.T - Y) ** 2, axis=1)))


def test_degenerate_and_global_minimum_of_deep_linear():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((25, 3))
    Y = rng.standard_normal((25, 2))
    mats, value = _ls_deep_linear_minimum(rng, (3, 4, 2), X, Y)
    ls = Landscape(deep_linear([jnp.asarray(m) for m in mats]), Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta = ls.ravel()
    assert float(ls.loss(theta)) == pytest.approx(value, rel=1e-12)
    c = classify(ls, theta)  # value unknown to the classifier: a degenerate minimum
    assert c.label is Label.degenerate_minimum and c.index == 0 and c.nullity > 0
    c2 = classify(ls, theta, global_min_value=value)
    assert c2.label is Label.global_minimum


def test_zero_loss_is_recognised_as_global():
    teacher = init_mlp(jax.random.PRNGKey(4), (3, 2, 1), "tanh", bias=False, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(5), teacher, 50)
    ls = Landscape(teacher, data)
    c = classify(ls, ls.ravel())
    assert c.label is Label.global_minimum and c.loss <= 1e-28


def test_not_critical(narrow_min):
    ls, sol = narrow_min
    c = classify(ls, sol.theta + 0.1)
    assert c.label is Label.not_critical
    assert c.grad_norm_inf > c.evidence.grad_tol


def _split(net: MLP, neuron: int, gamma: float) -> MLP:
    W1, W2 = (np.asarray(w) for w in net.weights)
    W1s = np.vstack([W1, W1[neuron : neuron + 1]])
    W2s = np.hstack([W2, (1 - gamma) * W2[:, neuron : neuron + 1]])
    W2s[:, neuron] *= gamma
    return MLP((jnp.asarray(W1s), jnp.asarray(W2s)), None, net.activation)


@pytest.mark.parametrize("gamma", [pytest.param(0.3, marks=pytest.mark.slow), 1.6])
def test_split_neuron_gives_a_labelled_critical_point(narrow_min, gamma):
    ls, sol = narrow_min
    narrow = ls.unravel(jnp.asarray(sol.theta))
    wide = _split(narrow, 0, gamma)
    lsw = Landscape(wide, ls.data)
    theta = lsw.ravel()
    g = np.asarray(lsw.grad(theta))
    # splitting preserves criticality (the narrow gradient was ~1e-13)
    assert np.max(np.abs(g)) <= 10 * TOL["critical_grad_inf"]
    assert float(lsw.loss(theta)) == pytest.approx(sol.loss, rel=1e-12)
    c = classify(lsw, theta)
    lam = np.linalg.eigvalsh(_hess(lsw, theta))
    assert c.nullity >= 1  # the split line is a flat direction
    assert c.label in (Label.strict_saddle, Label.non_strict_saddle, Label.degenerate_minimum)
    assert (c.label is Label.strict_saddle) == bool(lam[0] < -c.tolerance)
    # a saddle-capable polish from a nearby point converges to a critical point of the same loss
    rng = np.random.default_rng(1)
    sn = find_critical_point(lsw, theta + 1e-4 * rng.standard_normal(theta.size), SaddleNewton())
    assert sn.grad_norm_inf <= TOL["critical_grad_inf"]
    assert sn.loss == pytest.approx(sol.loss, rel=TOL["same_critical_set_loss_rtol"])


def test_gradient_flat_is_reported_never_converged():
    """LM on ∇L = 0 stalls where the gradient lies in the Hessian's near-kernel (Frye et al.)."""
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((6, 1)))
    Y = jnp.asarray(2 * rng.standard_normal((6, 1)))
    net = init_mlp(jax.random.PRNGKey(0), (1, 2, 1), "tanh", bias=False)
    ls = Landscape(net, Dataset(X, Y))
    flat = 0
    for _ in range(12):
        sol = find_critical_point(ls, 2 * rng.standard_normal(ls.n_params), SaddleNewton(),
                                  max_steps=300, throw=False)
        if sol.result is RESULTS.gradient_flat:
            flat += 1
            assert not sol.success
            g = np.asarray(jax.grad(ls.objective)(jnp.asarray(sol.theta)))
            H = _hess(ls, sol.theta)
            assert np.max(np.abs(g)) > 1e3 * TOL["critical_grad_inf"]
            ratio = np.linalg.norm(H @ g) / (np.linalg.norm(H, 2) * np.linalg.norm(g))
            assert ratio < SaddleNewton().flat_threshold
            with pytest.raises(Exception, match="gradient-flat"):
                sol.raise_if_failed()
            break  # one gradient-flat stall shown is enough
        else:
            assert sol.result in (RESULTS.successful, RESULTS.roundoff_floor, RESULTS.max_steps_reached)
    assert flat >= 1


def test_solver_rejects_bad_input(narrow_min):
    from lossatlas import InputError

    ls, sol = narrow_min
    with pytest.raises(InputError):
        find_critical_point(ls, np.full(sol.theta.size, np.nan))
    with pytest.raises(InputError):
        find_critical_point(ls, sol.theta[:-1])
    with pytest.raises(InputError):
        find_critical_point(ls, sol.theta.astype(np.float32))
    with pytest.raises(InputError):
        find_critical_point(ls, sol.theta, max_steps=-1)
    with pytest.raises(InputError):
        NewtonTrustRegion(eta=0.5)


def test_adam_matches_a_hand_written_adam():
    """optimise(method='adam') against Adam written out in NumPy (Kingma & Ba), on least squares."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    net = deep_linear([jnp.asarray(rng.standard_normal((1, 3)))])
    ls = Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(Y)))
    theta = np.asarray(ls.ravel()).copy()
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for k in range(1, 61):
        g = ((X @ theta - Y[:, 0]) @ X) / 20
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
    run = optimise(ls, ls.ravel(), method="adam", learning_rate=lr, num_steps=60, record_every=20)
    np.testing.assert_allclose(run.theta, theta, rtol=1e-10, atol=1e-12)
