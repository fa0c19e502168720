"""PatternNewton (issue 18, point 1): critical points of relu / leaky_relu / abs networks.

Kinds of truth, none of them lossatlas's own code path:

- an independent float64 forward/backward in PyTorch autograd (gradient, pre-activations, and
  the gradient with the activation pattern frozen at chosen derivatives — one-sided gradients);
- brute force over the vertices of the box of derivative choices: the minimal-norm point of their
  convex hull by a generic QP (SciPy SLSQP), and a fine grid, for the Clarke measure;
- one-sided finite differences of the loss on each side of a kink;
- the dense Hessian of the frozen-pattern loss by ``torch.autograd.functional.hessian`` for the
  region Hessian at a smooth critical point.

The default run keeps to small nets (a few seconds); the diabetes runs of the issue's user story
(random and Adam-trained starts) are ``slow``.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import lossatlas as la
from lossatlas.curvature import raw_hessian
from lossatlas.data import Dataset
from lossatlas.landscape import Landscape
from lossatlas.models import MLP
from lossatlas.solvers import RESULTS, PatternNewton
from lossatlas.solvers._pattern import _Eval, _kink_jacobian, _kink_rows, _padded, _rows, clarke_measure

OK = (RESULTS.successful, RESULTS.roundoff_floor, RESULTS.kink)


def _bounds(act):
    return (-1.0, 1.0) if act == "abs" else ((0.0, 1.0) if act == "relu" else (float(act.split(":")[1]), 1.0))


def _torch_act(name):
    if name == "relu":
        return lambda z: torch.where(z > 0, z, torch.zeros_like(z))
    if name == "abs":
        return torch.abs
    slope = float(name.split(":")[1])
    return lambda z: torch.where(z > 0, z, slope * z)


def _torch_parts(ls, theta):
    net = ls.unravel(jnp.asarray(theta))
    params = []
    for w, b in zip(net.weights, net.biases, strict=True):
        params += [torch.tensor(np.asarray(w), requires_grad=True), torch.tensor(np.asarray(b), requires_grad=True)]
    return params


def _torch_forward(params, X, Y, act, D=None, loss="mse"):
    """Loss and hidden pre-activations; `D`: frozen derivative pattern per hidden layer (h = D z)."""
    sigma = _torch_act(act)
    h = torch.as_tensor(X)
    zs = []
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = h @ params[2 * i].T + params[2 * i + 1]
        if i < n_layers - 1:
            zs.append(z)
            h = sigma(z) if D is None else torch.as_tensor(D[i]) * z
        else:
            h = z
    Y = torch.as_tensor(Y)
    if loss == "mse":
        val = ((h - Y) ** 2).sum() / (2 * X.shape[0])
    else:  # logistic, one output, 0/1 targets
        val = torch.nn.functional.binary_cross_entropy_with_logits(h, Y, reduction="mean")
    return val, zs


def _torch_grad(ls, theta, X, Y, act, D=None, loss="mse"):
    """Loss, gradient and pre-activations by an independent PyTorch forward/backward."""
    params = _torch_parts(ls, theta)
    val, zs = _torch_forward(params, X, Y, act, D, loss)
    val.backward()
    g = np.concatenate([p.grad.numpy().ravel() for p in params])
    return float(val.detach()), g, [z.detach().numpy() for z in zs]


def _min_norm_in_hull(P):
    """Minimal 2-norm point of the convex hull of the rows of P (a generic QP, SLSQP)."""
    k = len(P)
    G = P @ P.T
    res = minimize(lambda w: w @ G @ w, np.full(k, 1 / k), jac=lambda w: 2 * G @ w, method="SLSQP",
                   bounds=[(0, 1)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-30, "maxiter": 500})
    return float(np.linalg.norm(res.x @ P))


# ----------------------------------------------------------------------------- constructed kinks
def _kink_problem(act, seed=3):
    """A 3→4→1 net on 12 samples with z = 0 exactly for (sample 0, neuron 0), (sample 1, neuron 2)."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((12, 3))
    X[0] = [1.0, 0.0, 0.0]
    X[1] = [0.0, 1.0, 0.0]
    Y = r.standard_normal((12, 1))
    W1 = r.standard_normal((4, 3))
    b1 = r.standard_normal(4)
    b1[0] = -W1[0, 0]
    b1[2] = -W1[2, 1]
    W2 = r.standard_normal((1, 4))
    b2 = r.standard_normal(1)
    ls = Landscape(MLP((W1, W2), (b1, b2), act), Dataset(X, Y))
    return ls, X, Y, np.asarray(ls.ravel())


def _base_pattern(zs, act):
    lo, _ = _bounds(act)
    neg = -1.0 if act == "abs" else lo
    return [np.where(z > 0, 1.0, np.where(z < 0, neg, 0.0 if act == "abs" else lo)) for z in zs]


def _vertex_gradients(ls, theta, X, Y, act, pairs):
    """Region gradients (torch) for every vertex of the derivative box of the kink pairs."""
    _, _, zs = _torch_grad(ls, theta, X, Y, act)
    lo, hi = _bounds(act)
    base = _base_pattern(zs, act)
    out = []
    for choice in itertools.product((lo, hi), repeat=len(pairs)):
        D = [b.copy() for b in base]
        for (li, s, n), c in zip(pairs, choice, strict=True):
            D[li][s, n] = c
        out.append(_torch_grad(ls, theta, X, Y, act, D)[1])
    return np.array(out)


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs"])
def test_clarke_measure_matches_brute_force(act):
    ls, X, Y, theta = _kink_problem(act)
    c = clarke_measure(ls, theta)
    assert sorted(map(tuple, c["kink_pairs"])) == [(1, 0, 0), (1, 1, 2)]
    assert c["min_abs_preactivation"] == 0.0 and c["clarke_exact"] and c["clarke_norm"] == "2"
    P = _vertex_gradients(ls, theta, X, Y, act, [(0, 0, 0), (0, 1, 2)])
    brute = _min_norm_in_hull(P)
    assert c["clarke_stationarity"] == pytest.approx(brute, rel=1e-6, abs=1e-12)
    # a fine grid of the box agrees from above
    lo, hi = _bounds(act)
    t = np.linspace(0, 1, 201)
    grid = min(np.linalg.norm(((1 - a) * (1 - b)) * P[0] + ((1 - a) * b) * P[1] + (a * (1 - b)) * P[2] + (a * b) * P[3])
               for a in t for b in t)
    assert brute <= grid + 1e-12 and grid <= brute * (1 + 1e-2) + 1e-9
    assert all(lo - 1e-12 <= d <= hi + 1e-12 for d in c["kink_derivatives"])
    assert c["clarke_stationarity_inf"] <= c["clarke_stationarity"] + 1e-15


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs"])
def test_kink_jacobian_is_the_torch_derivative_of_the_gradient(act):
    """∂∇L/∂d_a = δ_a ∇z_a: the columns against torch gradients at the box's vertices, and the
    gradient is affine in (d_1, d_2) (the midpoint of a box edge is the mean of its vertices)."""
    ls, X, Y, theta = _kink_problem(act)
    pairs = [(0, 0, 0), (0, 1, 2)]
    ev = _Eval(ls, theta)
    J = _kink_jacobian(ls, ev, pairs)
    P = _vertex_gradients(ls, theta, X, Y, act, pairs)  # order (lo,lo), (lo,hi), (hi,lo), (hi,hi)
    lo, hi = _bounds(act)
    np.testing.assert_allclose(J[:, 0] * (hi - lo), P[2] - P[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(J[:, 1] * (hi - lo), P[1] - P[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(P[3] - P[2], P[1] - P[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs"])
def test_one_sided_gradients_by_finite_differences(act):
    ls, X, Y, theta = _kink_problem(act)
    lo, hi = _bounds(act)
    L = lambda th: _torch_grad(ls, th, X, Y, act)[0]  # noqa: E731
    zfun = lambda th: _torch_grad(ls, th, X, Y, act)[2][0]  # noqa: E731
    ev = _Eval(ls, theta)
    pairs = [(0, 0, 0), (0, 1, 2)]
    J = _kink_jacobian(ls, ev, pairs)
    d0 = np.array([0.0 if act == "abs" else lo, 0.0 if act == "abs" else lo])  # the convention at 0
    rng = np.random.default_rng(0)
    for _ in range(4):
        v = rng.standard_normal(theta.size)
        dz = zfun(theta + v) - zfun(theta)  # z is linear in θ for the first layer
        d = np.array([hi if dz[0, 0] > 0 else lo, hi if dz[1, 2] > 0 else lo])  # the side along +v
        g = ev.g + J @ (d - d0)
        h = 1e-6  # one-sided, second order: (4 L(h) − L(2h) − 3 L(0)) / (2h)
        fd = (4 * L(theta + h * v) - L(theta + 2 * h * v) - 3 * L(theta)) / (2 * h)
        assert float(g @ v) == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_static_shapes_no_recompilation_as_kink_sets_change():
    """Kink index sets are padded to buckets: sizes 1..8 share one compiled function."""
    ls, X, Y, theta = _kink_problem("relu")
    ev = _Eval(ls, theta)
    _kink_rows(ls, theta, ev.D, [(0, 0, 0)])
    before = _rows._cached._cache_size()
    for k in range(1, 9):
        pairs = [(0, s, n) for s in range(12) for n in range(4)][:k]
        z, G = _kink_rows(ls, theta, ev.D, pairs)
        assert z.shape == (k,) and G.shape == (k, ls.n_params)
        np.testing.assert_allclose(z, [ev.zs[0][s, n] for _, s, n in pairs], rtol=0, atol=1e-15)
    assert _rows._cached._cache_size() == before
    assert len(_padded([(0, 0, 0)] * 9)[0]) == 32


# ----------------------------------------------------------------------------- the solver
def _small(act, seed, n=60, widths=(3, 5, 1)):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, widths[0]))
    Y = np.sin(X @ r.standard_normal((widths[0], 1))) + 0.1 * r.standard_normal((n, 1))
    ws = tuple(r.standard_normal((b, a)) / np.sqrt(a) for a, b in itertools.pairwise(widths))
    bs = tuple(0.1 * r.standard_normal(b) for b in widths[1:])
    ls = Landscape(MLP(ws, bs, act), Dataset(X, Y))
    return ls, X, Y, np.asarray(ls.ravel())


def _check_end(ls, sol, X, Y, act, loss="mse"):
    """The end point against torch: smooth critical point or certified kink."""
    d = sol.stats.details
    _, g, zs = _torch_grad(ls, sol.theta, X, Y, act, loss=loss)
    zabs = np.concatenate([np.abs(z).ravel() for z in zs])
    assert d["min_abs_preactivation"] == pytest.approx(zabs.min(), rel=1e-6, abs=1e-15)
    if sol.result is not RESULTS.kink:
        assert np.max(np.abs(g)) <= 1e-10
        assert zabs.min() > 1e-8 * max(1.0, zabs.max())  # inside its region: a critical point of L
        assert d["region_hessian"] is True
        return
    # a kink: the reported Clarke element is a torch gradient with the kink derivatives frozen
    # at the reported choices (all inside their interval), and it is ~0
    c = d["clarke"]
    assert c["clarke_exact"] and d["kink_certified"] and c["clarke_stationarity_inf"] <= 1e-10
    lo, hi = _bounds(act)
    D = _base_pattern(zs, act)
    for (layer, s, n), dv in zip(c["kink_pairs"], c["kink_derivatives"], strict=True):
        assert lo - 1e-12 <= dv <= hi + 1e-12
        assert abs(zs[layer - 1][s, n]) <= 1e-8 * max(1.0, zabs.max())
        D[layer - 1][s, n] = dv
    _, g_clarke, _ = _torch_grad(ls, sol.theta, X, Y, act, D, loss=loss)
    assert np.linalg.norm(g_clarke) <= 1e-10 + 1e-6 * c["clarke_stationarity"]
    assert np.max(np.abs(g)) > 1e3 * c["clarke_stationarity_inf"]  # the autodiff gradient is not ~0 there


@pytest.mark.parametrize("act, seed", [("relu", 0), ("relu", 1), ("abs", 3),
                                       pytest.param("leaky_relu:0.1", 2, marks=pytest.mark.slow)])
def test_small_nets_reach_a_critical_point_or_a_certified_kink(act, seed):
    ls, X, Y, th0 = _small(act, seed)
    sol = PatternNewton(gtol=1e-12).run(ls, th0, 300)
    assert sol.result in OK, sol.result
    _check_end(ls, sol, X, Y, act)


def test_region_hessian_at_a_smooth_critical_point():
    """An over-parameterised net interpolates its 6 samples: a smooth minimum (no pre-activation
    at 0, zero residuals), where the autodiff Hessian is the frozen pattern's, by torch; a start
    next to it stays there (the region Levenberg-Marquardt of a near-critical start) instead of
    being descended from."""
    ls, X, Y, th0 = _small("relu", 4, n=6, widths=(2, 6, 1))
    sol = PatternNewton(gtol=1e-12).run(ls, th0, 300)
    assert sol.result in (RESULTS.successful, RESULTS.roundoff_floor), sol.result
    _check_end(ls, sol, X, Y, "relu")
    assert sol.stats.details["region_hessian"] is True
    _, _, zs = _torch_grad(ls, sol.theta, X, Y, "relu")
    D = [(z > 0).astype(float) for z in zs]
    params = _torch_parts(ls, sol.theta)
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def frozen_loss(v):
        ps, i = [], 0
        for s in shapes:
            k = int(np.prod(s))
            ps.append(v[i:i + k].reshape(s))
            i += k
        return _torch_forward(ps, X, Y, "relu", D)[0]

    H_torch = torch.autograd.functional.hessian(frozen_loss, flat).numpy()
    H = np.asarray(raw_hessian(ls, jnp.asarray(sol.theta)))
    np.testing.assert_allclose(H, H_torch, rtol=1e-10, atol=1e-13)
    again = PatternNewton(gtol=1e-12).run(ls, sol.theta + 1e-9, 50)
    assert again.result in (RESULTS.successful, RESULTS.roundoff_floor)
    assert again.stats.details["handoff_steps"] > 0 and np.linalg.norm(again.theta - sol.theta) < 1e-6


def test_cross_entropy_and_l2_penalty():
    """A logistic relu net with an L2 penalty: the end point's Clarke element and gradient against
    torch's own BCE loss plus the penalty's gradient 2λθ."""
    ls0, X, Y, th0 = _small("relu", 5, n=50)
    Yb = (Y > 0).astype(float)
    lam = 1e-3
    ls = Landscape(ls0.model, Dataset(X, Yb), loss="cross_entropy", lam=lam)
    sol = PatternNewton(gtol=1e-12).run(ls, th0, 300)
    assert sol.result in OK, sol.result
    d = sol.stats.details
    _, g, zs = _torch_grad(ls, sol.theta, X, Yb, "relu", loss="ce")
    g = g + 2 * lam * sol.theta
    if sol.result is RESULTS.kink:
        c = d["clarke"]
        D = _base_pattern(zs, "relu")
        for (layer, s, n), dv in zip(c["kink_pairs"], c["kink_derivatives"], strict=True):
            D[layer - 1][s, n] = dv
        g = _torch_grad(ls, sol.theta, X, Yb, "relu", D, loss="ce")[1] + 2 * lam * sol.theta
        assert c["clarke_stationarity_inf"] <= 1e-10
    assert np.max(np.abs(g)) <= 1e-10


def test_budgets_and_zero_steps():
    ls, X, Y, th0 = _small("relu", 0)
    sol = PatternNewton().run(ls, th0, 0)
    assert sol.result is RESULTS.max_steps_reached and sol.stats.num_steps == 0
    np.testing.assert_array_equal(sol.theta, th0)
    sol = PatternNewton(descent_steps=3).run(ls, th0, 100)
    assert sol.result is RESULTS.max_steps_reached and sol.stats.num_steps <= 4
    assert "min_abs_preactivation" in sol.stats.details


def test_bad_input():
    ls, X, Y, th0 = _small("relu", 0)
    with pytest.raises(la.InputError, match="piecewise-linear"):
        PatternNewton().run(Landscape(MLP(ls.model.weights, ls.model.biases, "tanh"), ls.data), th0, 10)
    with pytest.raises(la.InputError, match="eta"):
        PatternNewton(eta=0.5)
    with pytest.raises(la.InputError, match="max_kinks"):
        PatternNewton(max_kinks=0)


def test_polish_uses_pattern_newton_without_the_flow():
    ls, X, Y, th0 = _small("relu", 1)
    end = la.polish(ls, th0, max_time=60)
    assert end.method.value == "pattern_newton" and end.flow is None and end.timings.flow == 0.0
    rec = end.to_record()
    assert "min_abs_preactivation" in rec["pattern_newton"]
    assert end.result in OK


def test_every_kinked_end_point_reports_its_preactivations(monkeypatch):
    """Whatever solver produced it — PatternNewton, or Newton-MR above the dense limit (the 10⁵
    parameter path, taken here by lowering the limit) — a relu end point's record carries
    min_abs_preactivation and max |z| over the hidden pre-activations, computed here by numpy."""
    from lossatlas.pipeline import policy

    ls, X, _, th0 = _small("relu", 2, widths=(3, 6, 1))

    def numpy_z(theta):
        net = ls.unravel(jnp.asarray(theta))
        z = np.asarray(X) @ np.asarray(net.weights[0]).T + np.asarray(net.biases[0])
        return np.abs(z)

    monkeypatch.setattr(policy, "LARGE_FLOW_WORK", 1.0)  # the shortest flow above the limit
    for limit in (policy.DENSE_LIMIT, 4):
        monkeypatch.setattr(policy, "DENSE_LIMIT", limit)
        end = la.polish(ls, th0, max_steps=30, classify_point=False, continuation=False)
        rec = end.to_record()
        z = numpy_z(end.theta)
        assert rec["min_abs_preactivation"] == pytest.approx(z.min(), rel=1e-12, abs=1e-300)
        assert rec["preactivation_scale"] == pytest.approx(z.max(), rel=1e-12)
        assert rec["on_kink"] is bool(z.min() <= 1e-8 * max(1.0, z.max()))
        assert ("region" in rec["preactivation_note"]) is (not rec["on_kink"])
        expected = "pattern_newton" if limit > 4 else "newton_mr"
        assert end.attempts[0].producer.value == expected
    smooth, *_ = _small("tanh", 2)
    end = la.polish(smooth, smooth.ravel(), method="saddle", max_steps=5, classify_point=False, continuation=False)
    assert "min_abs_preactivation" not in end.to_record() and end.preactivation is None


# ----------------------------------------------------------------------------- diabetes (slow)
def _diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return X, y[:, None]


def _diabetes_net(seed, act):
    r = np.random.default_rng(seed)
    ws, bs = [], []
    for a, b in itertools.pairwise((10, 8, 1)):
        ws.append(r.standard_normal((b, a)) / np.sqrt(a))
        bs.append(0.1 * r.standard_normal(b))
    return MLP(tuple(ws), tuple(bs), act)


def _adam_start(X, Y, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for _ in range(1000):
        opt.zero_grad()
        loss = ((model(Xt) - Yt) ** 2).sum() / (2 * len(X))
        loss.backward()
        opt.step()
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


@pytest.mark.slow
@pytest.mark.parametrize("act, start", [("relu", "seed1"), ("relu", "seed2"), ("relu", "adam"),
                                        ("leaky_relu:0.1", "seed1"), ("abs", "seed2")])
def test_diabetes_reaches_a_critical_point_or_a_certified_kink(act, start):
    X, Y = _diabetes()
    ls = Landscape(_diabetes_net(0, act), Dataset(X, Y))
    th0 = _adam_start(X, Y, 0) if start == "adam" else np.asarray(ls.ravel(_diabetes_net(int(start[4:]), act)))
    sol = PatternNewton(gtol=1e-12).run(ls, th0, 500)
    assert sol.result in OK, sol.result
    _check_end(ls, sol, X, Y, act)
