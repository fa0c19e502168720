"""PatternNewton (issue 18, point 1): critical points of relu / leaky_relu / abs networks.

Kinds of truth: an independent float64 forward/backward in PyTorch autograd (gradient at the
end point, pre-activations), brute force over the vertices of the box of derivative choices
(minimal-norm point of their convex hull by a separate QP) for the Clarke measure, and
one-sided finite differences of the loss on each side of a kink.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.datasets import load_diabetes

from lossatlas.data import Dataset
from lossatlas.landscape import Landscape
from lossatlas.models import MLP
from lossatlas.solvers import RESULTS, PatternNewton
from lossatlas.solvers._pattern import _Act, _grad_jac_d, _pattern, _zs, clarke_measure

OK = (RESULTS.successful, RESULTS.roundoff_floor, RESULTS.kink)


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return X, y[:, None]


def _net(seed, act, widths=(10, 8, 1)):
    r = np.random.default_rng(seed)
    ws, bs = [], []
    for a, b in itertools.pairwise(widths):
        ws.append(r.standard_normal((b, a)) / np.sqrt(a))
        bs.append(0.1 * r.standard_normal(b))
    return MLP(tuple(ws), tuple(bs), act)


def _torch_act(name):
    if name == "relu":
        return lambda z: torch.where(z > 0, z, torch.zeros_like(z))
    if name == "abs":
        return torch.abs
    slope = float(name.split(":")[1])
    return lambda z: torch.where(z > 0, z, slope * z)


def _torch_grad(ls, theta, X, Y, act, D=None):
    """Loss gradient and hidden pre-activations by an independent PyTorch forward/backward.

    `D`: optional frozen derivative pattern per hidden layer (then ``h = D * z``)."""
    net = ls.unravel(jnp.asarray(theta))
    params = []
    for w, b in zip(net.weights, net.biases, strict=True):
        params += [torch.tensor(np.asarray(w), requires_grad=True), torch.tensor(np.asarray(b), requires_grad=True)]
    sigma = _torch_act(act)
    h = torch.tensor(X)
    zs = []
    n_layers = len(net.weights)
    for i in range(n_layers):
        z = h @ params[2 * i].T + params[2 * i + 1]
        if i < n_layers - 1:
            zs.append(z.detach().numpy())
            h = sigma(z) if D is None else torch.tensor(D[i]) * z
        else:
            h = z
    loss = ((h - torch.tensor(Y)) ** 2).sum() / (2 * X.shape[0])
    loss.backward()
    g = np.concatenate([p.grad.numpy().ravel() for p in params])
    return float(loss.detach()), g, zs


def _check_converged(ls, sol, X, Y, act):
    _, g, zs = _torch_grad(ls, sol.theta, X, Y, act)
    assert np.max(np.abs(g)) <= 1e-10
    zmin = min(np.min(np.abs(z)) for z in zs)
    assert zmin > 1e-12  # interior of its region: a genuine critical point of L
    assert sol.stats.details["min_abs_preactivation"] == pytest.approx(zmin, rel=1e-6)
    assert sol.stats.details["region_hessian"] is True


def _adam_start(ls, X, Y, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for _ in range(400):
        opt.zero_grad()
        loss = ((model(Xt) - Yt) ** 2).sum() / (2 * len(X))
        loss.backward()
        opt.step()
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


# ----------------------------------------------------------------------------- (a) relu, diabetes
@pytest.mark.parametrize("start", ["seed1", "seed2", "seed4", "adam"])
def test_relu_diabetes_reaches_critical_point_or_kink(start):
    X, Y = _diabetes()
    ls = Landscape(_net(0, "relu"), Dataset(X, Y))
    theta0 = _adam_start(ls, X, Y, 0) if start == "adam" else np.asarray(ls.ravel(_net(int(start[4:]), "relu")))
    sol = PatternNewton().run(ls, theta0, 300)
    assert sol.result in OK, sol.result
    d = sol.stats.details
    assert "min_abs_preactivation" in d
    if sol.result is RESULTS.kink:
        assert d["min_abs_preactivation"] <= 1e-8 * max(1.0, d["preactivation_scale"])
        assert d["clarke"]["clarke_stationarity"] is not None and d["kink_pairs"]
    else:
        _check_converged(ls, sol, X, Y, "relu")


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


def _bounds(act):
    return (-1.0, 1.0) if act == "abs" else ((0.0, 1.0) if act == "relu" else (float(act.split(":")[1]), 1.0))


def _vertex_gradients(ls, theta, X, Y, act):
    """Region gradients (torch) for every vertex of the derivative box of the kink pairs."""
    _, _, zs = _torch_grad(ls, theta, X, Y, act)
    lo, hi = _bounds(act)
    base = [np.where(z > 0, 1.0, lo if act != "abs" else -1.0) for z in zs]
    base = [np.where(z < 0, lo if act != "abs" else -1.0, b) for z, b in zip(zs, base, strict=True)]
    pairs = [(0, 0, 0), (0, 1, 2)]
    out = []
    for choice in itertools.product((lo, hi), repeat=len(pairs)):
        D = [b.copy() for b in base]
        for (li, s, n), c in zip(pairs, choice, strict=True):
            D[li][s, n] = c
        out.append(_torch_grad(ls, theta, X, Y, act, D)[1])
    return np.array(out)


def _min_norm_in_hull(P):
    k = len(P)
    G = P @ P.T
    res = minimize(lambda w: w @ G @ w, np.full(k, 1 / k), jac=lambda w: 2 * G @ w, method="SLSQP",
                   bounds=[(0, 1)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-30, "maxiter": 500})
    return float(np.linalg.norm(res.x @ P))


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs"])
def test_clarke_measure_matches_brute_force(act):
    ls, X, Y, theta = _kink_problem(act)
    c = clarke_measure(ls, theta)
    assert sorted(map(tuple, c["kink_pairs"])) == [(1, 0, 0), (1, 1, 2)]
    assert c["min_abs_preactivation"] == 0.0 and c["clarke_exact"] and c["clarke_norm"] == "2"
    P = _vertex_gradients(ls, theta, X, Y, act)
    brute = _min_norm_in_hull(P)
    assert c["clarke_stationarity"] == pytest.approx(brute, rel=1e-6, abs=1e-12)
    # a fine grid of the box agrees from above
    lo, hi = _bounds(act)
    t = np.linspace(0, 1, 201)
    grid = min(np.linalg.norm(((1 - a) * (1 - b)) * P[0] + ((1 - a) * b) * P[1] + (a * (1 - b)) * P[2] + (a * b) * P[3])
               for a in t for b in t)
    assert brute <= grid + 1e-12 and grid <= brute * (1 + 1e-2) + 1e-9
    assert all(lo - 1e-12 <= d <= hi + 1e-12 for d in c["kink_derivatives"])


def test_clarke_measure_below_every_vertex_and_the_convention():
    ls, X, Y, theta = _kink_problem("relu")
    zs = _zs(ls, theta)
    D0 = _pattern(_Act("relu"), zs)
    g0, J = _grad_jac_d(ls, jnp.asarray(theta), D0, jnp.asarray([0, 0]), jnp.asarray([0, 1]),
                        jnp.asarray([0, 2]), jnp.asarray([0.0, 0.0]))
    c = clarke_measure(ls, theta)
    box = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    vert = np.linalg.norm(np.asarray(g0)[None, :] + box @ np.asarray(J).T, axis=1)
    assert c["clarke_stationarity"] <= vert.min() + 1e-15
    assert c["clarke_stationarity_inf"] <= c["clarke_stationarity"] + 1e-15


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs"])
def test_one_sided_gradients_by_finite_differences(act):
    ls, X, Y, theta = _kink_problem(act)
    lo, hi = _bounds(act)
    L = lambda th: _torch_grad(ls, th, X, Y, act)[0]  # noqa: E731
    rng = np.random.default_rng(0)
    zfun = lambda th: _torch_grad(ls, th, X, Y, act)[2][0]  # noqa: E731
    for _ in range(4):
        v = rng.standard_normal(theta.size)
        # the side each kink pair goes to along +v: sign of dz/dt (z is linear in θ for layer 1)
        dz = zfun(theta + v) - zfun(theta)
        d = [hi if dz[0, 0] > 0 else lo, hi if dz[1, 2] > 0 else lo]
        zs = _zs(ls, theta)
        D0 = _pattern(_Act(act), zs)
        g, _ = _grad_jac_d(ls, jnp.asarray(theta), D0, jnp.asarray([0, 0]), jnp.asarray([0, 1]),
                           jnp.asarray([0, 2]), jnp.asarray(d))
        h = 1e-6
        # one-sided, second order: (4 L(h) − L(2h) − 3 L(0)) / (2h)
        fd = (4 * L(theta + h * v) - L(theta + 2 * h * v) - 3 * L(theta)) / (2 * h)
        assert float(np.asarray(g) @ v) == pytest.approx(fd, rel=1e-6, abs=1e-8)


# ----------------------------------------------------------------------------- (d) leaky, abs
@pytest.mark.parametrize("act", ["leaky_relu:0.1", "abs"])
def test_leaky_and_abs_on_diabetes(act):
    X, Y = _diabetes()
    ls = Landscape(_net(0, act), Dataset(X, Y))
    statuses = []
    for seed in (1, 2):
        sol = PatternNewton().run(ls, np.asarray(ls.ravel(_net(seed, act))), 300)
        assert sol.result in OK, sol.result
        statuses.append(sol.result)
        if sol.result is not RESULTS.kink:
            _check_converged(ls, sol, X, Y, act)
        else:
            assert sol.stats.details["clarke"]["clarke_stationarity"] is not None


def test_bad_input():
    from lossatlas import InputError

    X, Y = _diabetes()
    ls = Landscape(_net(0, "tanh"), Dataset(X, Y))
    with pytest.raises(InputError, match="piecewise-linear"):
        PatternNewton().run(ls, np.asarray(ls.ravel()), 10)
