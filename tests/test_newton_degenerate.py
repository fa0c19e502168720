"""Newton solvers on degenerate critical points and on channels to infinity (issue 3).

Truth used here: exact constructions. A student that *is* a split copy of its teacher lies on
the zero-loss set of the closed-form population loss (a degenerate minimum); a single ``erf``
neuron fitting a linear target has no finite minimiser — the loss decreases monotonically along
the explicit curve ``w = β / (c σ'(0))``, ``a = c`` as ``c → ∞`` (a linear unit at infinity);
two ``softplus`` neurons fitting a *derivative neuron* ``(β·x) σ'(w·x)`` approach it only as
``a → ±∞`` with ``w_1 − w_2 → 0``. Gradients are checked with ``jax.grad`` directly, not with
the solver's report.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.data import Dataset
from lossatlas.landscape import Landscape
from lossatlas.models import MLP, init_mlp
from lossatlas.pipeline import Producer, polish
from lossatlas.solvers import RESULTS, NewtonTrustRegion, SaddleNewton, find_critical_point
from lossatlas.solvers._escape import EscapeMonitor, channel_signatures
from tolerances import TOL


def _grad_inf(ls, theta):
    return float(np.max(np.abs(np.asarray(jax.grad(ls.objective)(jnp.asarray(theta))))))


def _split_teacher(d, seed, gamma):
    """Width-3 erf student = the width-2 teacher with neuron 0 split in ratio γ : 1 − γ."""
    teacher = init_mlp(jax.random.PRNGKey(seed), (d, 2, 1), "erf", scale=1.0)
    W, v = (np.asarray(w) for w in teacher.weights)
    Ws = np.vstack([W, W[:1]])
    vs = np.hstack([v, (1 - gamma) * v[:, :1]])
    vs[:, 0] *= gamma
    return Landscape(MLP((jnp.asarray(Ws), jnp.asarray(vs)), None, "erf"), teacher=teacher)


@pytest.mark.parametrize(("d", "seed", "gamma", "eps"), [(3, 1, 0.3, 1e-1), (4, 2, 1.6, 3e-2)])
def test_trust_region_converges_on_split_zero_loss_population_minimum(d, seed, gamma, eps):
    """At the zero-loss set of the population loss the loss value is a difference of O(1)
    terms, i.e. round-off (~1e-16) rather than ~0; a trust region that judged steps by
    ``ΔL / pred`` there collapsed its radius (before this fix: `max_steps_reached` at
    ||∇L||∞ ~ 1e-9 after 500 steps on both cases)."""
    ls = _split_teacher(d, seed, gamma)
    theta0 = np.asarray(ls.ravel()) + eps * np.random.default_rng(seed).standard_normal(ls.n_params)
    sol = find_critical_point(ls, theta0, NewtonTrustRegion(), max_steps=500, throw=False)
    assert sol.result is RESULTS.successful
    assert _grad_inf(ls, sol.theta) <= TOL["critical_grad_inf"]
    assert abs(sol.loss) <= TOL["committee_zero_loss_atol"]  # the teacher's function
    # a rejected step leaves θ unchanged, so its Hessian is reused: one per accepted step
    assert sol.stats.num_hessians == sol.stats.num_steps - sol.stats.rejected_steps + 1


def test_newton_through_the_symmetry_reduction_is_exact():
    """`lossatlas.polish`: from a point near the split (degenerate) manifold where the trust
    region stalls, reduce to the minimal network, polish it, project back; the returned point's
    own gradient meets the target and it computes the teacher function."""
    ls = _split_teacher(3, 0, 0.3)
    theta0 = np.asarray(ls.ravel()) + 1e-2 * np.random.default_rng(0).standard_normal(ls.n_params)
    plain = find_critical_point(ls, theta0, NewtonTrustRegion(), max_steps=50, throw=False)
    assert not plain.success  # slow on the degenerate manifold
    sol = polish(ls, theta0, method="newton", max_steps=50, global_min_value=0.0)
    assert sol.converged and sol.method is Producer.symmetry_projection
    assert [a.producer for a in sol.attempts] == [Producer.trust_region_newton]
    assert sol.label.value == "global_minimum"
    assert _grad_inf(ls, sol.theta) <= TOL["critical_grad_inf"]
    assert abs(sol.loss) <= TOL["committee_zero_loss_atol"]
    # the projection is onto a split of the teacher: neurons 0 and 2 share their input weights
    W = sol.theta[: 3 * 3].reshape(3, 3)
    np.testing.assert_allclose(W[0], W[2], rtol=0, atol=TOL["symmetry_function_atol"])


def _linear_target(seed=0, d=2, n=200):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.array([1.0, -0.5])[:d]
    return X, beta, Dataset(jnp.asarray(X), jnp.asarray((X @ beta)[:, None]))


def test_loss_decreases_along_the_linear_channel():
    """Ground truth for the next test: one erf neuron on a linear target has no finite
    minimiser of loss → 0; along ``w = β/(c√(2/π))``, ``a = c`` the loss falls monotonically."""
    X, beta, data = _linear_target()
    net = MLP((jnp.zeros((1, 2)), jnp.ones((1, 1))), None, "erf")
    ls = Landscape(net, data)
    losses = [float(ls.loss(jnp.asarray(np.r_[beta / (c * np.sqrt(2 / np.pi)), c])))
              for c in (2.0, 4.0, 8.0, 16.0, 32.0)]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 1e-3 * losses[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_escape_along_a_linear_neuron_is_reported_as_diverging(seed):
    X, beta, data = _linear_target()
    r = np.random.default_rng(seed)
    net = MLP((jnp.asarray(r.standard_normal((1, 2))), jnp.asarray(r.standard_normal((1, 1)))), None, "erf")
    ls = Landscape(net, data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=3000, throw=False)
    assert sol.result is RESULTS.diverging and not sol.success
    esc = sol.stats.escape
    assert esc["norm_end"] > esc["norm_start"] and esc["loss_end"] < esc["loss_start"]
    ch = esc["channels"][0]
    assert ch["kind"] == "linear_neuron"
    W, a = sol.theta[:2], sol.theta[2]
    # the neuron is a linear unit: input weights → 0, σ'(0) a w → β
    assert np.linalg.norm(W) < 0.05 * abs(a)
    np.testing.assert_allclose(np.sqrt(2 / np.pi) * a * W, beta, rtol=0, atol=0.05)
    with pytest.raises(Exception, match="escape to infinity"):
        sol.raise_if_failed()


def test_escape_along_a_derivative_pair_is_reported_as_diverging():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    beta, w_star = np.array([1.0, -0.5]), np.array([0.8, 0.6])
    gate = 1 / (1 + np.exp(-(X @ w_star)))  # softplus' = sigmoid
    data = Dataset(jnp.asarray(X), jnp.asarray(((X @ beta) * gate)[:, None]))
    net = init_mlp(jax.random.PRNGKey(0), (2, 2, 1), "softplus")
    ls = Landscape(net, data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=3000, throw=False)
    assert sol.result is RESULTS.diverging
    ch = sol.stats.escape["channels"][0]
    assert ch["kind"] == "derivative_pair" and sorted(ch["neurons"]) == [0, 1]
    W, a = sol.theta[:4].reshape(2, 2), sol.theta[4:]
    assert a[0] * a[1] < 0 and abs(a[0] + a[1]) < 0.5 * max(abs(a))  # outputs (nearly) cancel
    # the pair computes the derivative neuron: a_0 (w_0 − w_1) → β, the mean input weight → w*
    np.testing.assert_allclose(a[0] * (W[0] - W[1]), beta, rtol=0, atol=0.05)
    np.testing.assert_allclose(0.5 * (W[0] + W[1]), w_star, rtol=0, atol=0.05)


def test_channel_signatures_on_constructed_networks():
    rng = np.random.default_rng(3)
    X = jnp.asarray(rng.standard_normal((10, 3)))
    data = Dataset(X, jnp.zeros((10, 1)))
    u = rng.standard_normal(3)
    W = np.vstack([u, u + 1e-3, rng.standard_normal(3), -u + 1e-3, 1e-3 * rng.standard_normal(3)])
    v = np.array([[5.0, -5.2, 0.3, 5.1, 4.0]])
    # (0, 1): equal inputs, cancelling outputs. (0, 3): for odd σ, neuron 3 is (−u, −5.1), i.e.
    # (u, −5.1) after a sign flip, which cancels neuron 0. (1, 3) are close after the flip but
    # their outputs (−5.2 and −5.1) add up: no channel. Neuron 4: input ~1e-3, output 4.
    for act, expected in (("erf", {("derivative_pair", (0, 1)), ("derivative_pair", (0, 3)),
                                   ("linear_neuron", (4,))}),
                          ("softplus", {("derivative_pair", (0, 1))})):
        ls = Landscape(MLP((jnp.asarray(W), jnp.asarray(v)), None, act), data)
        found = {(c["kind"], tuple(c["neurons"])) for c in channel_signatures(ls, ls.ravel())}
        assert found == expected, (act, found)
    # a generic network has none
    ls = Landscape(init_mlp(jax.random.PRNGKey(0), (3, 6, 1), "erf"), data)
    assert channel_signatures(ls, ls.ravel()) == []


def test_escape_monitor_needs_a_persistent_escape():
    """A trajectory that runs out along a channel and comes back is not an escape."""
    rng = np.random.default_rng(0)
    data = Dataset(jnp.asarray(rng.standard_normal((10, 2))), jnp.zeros((10, 1)))
    ls = Landscape(MLP((jnp.ones((2, 2)), jnp.ones((1, 2))), None, "softplus"), data)
    u = np.array([0.6, 0.8])

    def point(c):  # a derivative pair with output weights ±c
        return np.r_[u, u + 0.5 / c, c, -c]

    def run(cs):
        mon = EscapeMonitor(ls, window=100, every=25, persistence=4)
        hits = []
        for c in cs:
            mon.record(point(c), 1.0 / c)  # loss decreasing while c grows
            if mon.due():
                hits.append(mon.update(point(c)) is not None)
        return hits

    out = run(np.linspace(2.0, 20.0, 400))
    assert out[-1] and not any(out[:3])  # declared only after 4 passing checks in a row
    back = run(np.r_[np.linspace(2.0, 4.0, 150), np.linspace(4.0, 3.0, 250)])
    assert not any(back)


@pytest.mark.slow  # the watchdog's other tests in this file run by default
def test_watchdog_saddle_newton_reaches_a_flat_minimum():
    """Next to a minimum with tiny Hessian eigenvalues ||∇L|| rises before it falls along
    Newton's way in; a solver that must reduce ||∇L|| at every step used to stop there as
    `gradient_flat`. The population minimum at the teacher (an output weight −0.00995, so
    λ_min ≈ 3e-7) displaced along its two flattest eigenvectors."""
    teacher = init_mlp(jax.random.PRNGKey(1002), (2, 4, 1), "erf", scale=1.0)
    ls = Landscape(teacher, teacher=teacher)
    theta = np.asarray(ls.ravel())
    H = np.asarray(jax.jit(jax.hessian(ls.objective))(jnp.asarray(theta)))
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    assert 0 < lam[0] < 1e-6
    for k in (0, 1):
        start = theta + 0.03 * V[:, k]
        sol = find_critical_point(ls, start, SaddleNewton(), max_steps=200, throw=False)
        assert sol.success and _grad_inf(ls, sol.theta) <= TOL["critical_grad_inf"]
        assert abs(sol.loss) <= TOL["committee_zero_loss_atol"]
        old = find_critical_point(ls, start, SaddleNewton(watchdog=0), max_steps=200, throw=False)
        assert old.result is RESULTS.gradient_flat  # the behaviour without the watchdog


def test_polish_reports_a_channel_as_diverging():
    """Levenberg-Marquardt stalls on the escape; the trust-region minimiser (the policy's
    fallback from a minimum-like start) detects the channel, and nothing else is tried."""
    X, beta, data = _linear_target()
    r = np.random.default_rng(0)
    net = MLP((jnp.asarray(r.standard_normal((1, 2))), jnp.asarray(r.standard_normal((1, 1)))), None, "erf")
    ls = Landscape(net, data)
    end = polish(ls, ls.ravel(), t1=1e4, handoff_tol=1e-8, max_steps=3000)
    assert not end.converged
    assert end.result is RESULTS.diverging and end.method is Producer.trust_region_newton
    assert [a.producer for a in end.attempts] == [Producer.saddle_newton, Producer.trust_region_newton]
    assert end.escape["channels"][0]["kind"] == "linear_neuron" and end.limit is not None


# ----------------------------------------------------------------------------- limits at infinity
def _on_channel(phi_net, u, c, eps, d0):
    """The original network with neuron ``c`` on the channel towards ``u``: ``w_c = ε û``,
    ``a_c = |u| / (σ'(0) ε)``, so that ``σ'(0) a_c w_c = u`` exactly."""
    W1, W2 = phi_net
    nu = np.linalg.norm(u)
    W1 = np.insert(W1, c, eps * u / nu, axis=0)
    W2 = np.insert(W2, c, nu / (d0 * eps), axis=1)
    return W1, W2


@pytest.mark.parametrize("population", [True, False])
def test_limit_loss_is_the_loss_at_infinity(population):
    """Truth: the original loss (closed-form population loss, itself checked against Monte
    Carlo, or the empirical loss) along the channel. ``L(θ_ε) → L_lim`` with an O(ε²) error."""
    from lossatlas.solvers._limit import limit_loss_fn

    d, m, c = 3, 3, 1
    act = "erf" if population else "tanh"
    teacher = init_mlp(jax.random.PRNGKey(5), (d, 2, 1), act, scale=1.0)
    student = init_mlp(jax.random.PRNGKey(6), (d, m, 1), act, scale=1.0)
    if population:
        ls = Landscape(student, teacher=teacher)
    else:
        X = jax.random.normal(jax.random.PRNGKey(7), (300, d), jnp.float64)
        ls = Landscape(student, Dataset(X, teacher(X)))
    rng = np.random.default_rng(0)
    W1r, W2r, u = rng.standard_normal((m - 1, d)), rng.standard_normal((1, m - 1)), rng.standard_normal(d)
    lim, _ = limit_loss_fn(ls, m - 1)
    L_lim = float(lim(jnp.asarray(np.r_[W1r.ravel(), W2r.ravel(), u])))
    errs = []
    for eps in (1e-2, 5e-3, 2.5e-3):
        W1, W2 = _on_channel((W1r, W2r), u, c, eps, np.sqrt(2 / np.pi) if population else 1.0)
        errs.append(abs(float(ls.loss(jnp.asarray(np.r_[W1.ravel(), W2.ravel()]))) - L_lim))
    assert errs[-1] < 1e-4 * max(abs(L_lim), 1.0)
    assert errs[0] / errs[1] > 3.5 and errs[1] / errs[2] > 3.5  # O(ε²)


def test_limit_of_a_single_neuron_escape_is_least_squares():
    """One erf neuron on a linear target: the limit model is the linear unit alone, whose
    critical point is the least-squares fit ``u = β`` with loss 0."""
    X, beta, data = _linear_target()
    r = np.random.default_rng(0)
    net = MLP((jnp.asarray(r.standard_normal((1, 2))), jnp.asarray(r.standard_normal((1, 1)))), None, "erf")
    ls = Landscape(net, data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=3000, throw=False)
    assert sol.result is RESULTS.diverging
    lim = sol.stats.limit
    assert lim["converged"] and lim["grad_norm_inf"] <= TOL["critical_grad_inf"]
    np.testing.assert_allclose(lim["u"], np.linalg.lstsq(X, X @ beta, rcond=None)[0], rtol=0, atol=1e-10)
    assert lim["loss"] <= 1e-20 and lim["index"] == 0


def test_population_escape_tends_to_a_certified_critical_point_at_infinity():
    """An erf student (d = 2, width 4, population loss) whose Newton iterates escape along a
    linear-neuron channel. The reported limit must be a critical point *of the original
    landscape at infinity*: rebuilt on the channel at scale ε, the original gradient (with
    ``jax.grad``) vanishes as ε → 0 (like ε), and the loss there tends to the limit's loss from
    above (like ε²)."""
    teacher = init_mlp(jax.random.PRNGKey(1002), (2, 4, 1), "erf", scale=1.0)
    ls = Landscape(init_mlp(jax.random.PRNGKey(13), (2, 4, 1), "erf"), teacher=teacher)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(gtol=1e-12, expand=4.0), max_steps=3000,
                              throw=False)
    assert sol.result is RESULTS.diverging
    lim = sol.stats.limit
    assert lim["converged"] and lim["grad_norm_inf"] <= TOL["critical_grad_inf"]
    assert lim["loss"] <= lim["start_loss"]
    (c,) = lim["neurons"]
    from lossatlas.solvers import linear_channel_limit

    full = linear_channel_limit(ls, sol.theta, [c])
    grads, gaps = [], []
    for eps in (1e-2, 1e-3, 1e-4):
        W1, W2 = _on_channel((full.W1, full.W2), full.u, c, eps, np.sqrt(2 / np.pi))
        th = np.r_[W1.ravel(), W2.ravel()]
        grads.append(_grad_inf(ls, th))
        gaps.append(float(ls.loss(jnp.asarray(th))) - full.loss)
    # the channel neuron's own gradient carries a_c ~ 1/ε times the O(ε²) mismatch: O(ε)
    assert grads[1] < 0.2 * grads[0] and grads[2] < 0.2 * grads[1] and grads[2] < 1e-7
    assert all(g > -1e-15 for g in gaps) and gaps[2] < 1e-3 * gaps[0]  # O(ε²) from above


def test_limit_refuses_unsupported_networks():
    from lossatlas._errors import InputError
    from lossatlas.solvers import linear_channel_limit

    X, beta, data = _linear_target()
    biased = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "erf", bias=True), data)
    with pytest.raises(InputError, match="bias-free"):
        linear_channel_limit(biased, biased.ravel(), [0])
    relu = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "relu"), data)
    with pytest.raises(InputError, match="no linear-neuron channels"):
        linear_channel_limit(relu, relu.ravel(), [0])
    ok = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "erf"), data)
    with pytest.raises(InputError, match="neurons"):
        linear_channel_limit(ok, ok.ravel(), [5])


def test_population_limit_of_a_fully_linear_student_is_the_best_linear_fit():
    """A width-1 erf student whose only neuron escapes: the limit model is a linear unit on the
    population loss, minimised by ``u = E[t(x) x]`` — estimated here by Monte Carlo."""
    from lossatlas.solvers import linear_channel_limit

    teacher = init_mlp(jax.random.PRNGKey(1), (3, 2, 1), "erf", scale=1.0)
    ls = Landscape(init_mlp(jax.random.PRNGKey(2), (3, 1, 1), "erf"), teacher=teacher)
    lim = linear_channel_limit(ls, ls.ravel(), [0])
    assert lim.converged and lim.index == 0
    X = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (400_000, 3), jnp.float64))
    tx = np.asarray(teacher(jnp.asarray(X)))[:, 0]
    samples = tx[:, None] * X
    mc, se = samples.mean(0), samples.std(0) / np.sqrt(len(X))
    assert np.all(np.abs(lim.u - mc) <= TOL["mc_sigmas"] * se)
    # and its loss is ½ (E[t²] − |u|²)
    t2 = float(np.mean(tx**2))
    assert abs(lim.loss - 0.5 * (t2 - lim.u @ lim.u)) <= TOL["mc_sigmas"] * np.std(tx**2) / np.sqrt(len(X))


def test_limit_reports_an_unfinished_solve():
    """A step budget too small for the target is reported as such, never as converged."""
    from lossatlas.solvers import linear_channel_limit

    teacher = init_mlp(jax.random.PRNGKey(1), (3, 2, 1), "erf", scale=1.0)
    ls = Landscape(init_mlp(jax.random.PRNGKey(2), (3, 3, 1), "erf"), teacher=teacher)
    lim = linear_channel_limit(ls, ls.ravel(), [0], max_steps=1)
    assert lim.result is RESULTS.max_steps_reached and not lim.converged
    assert lim.grad_norm_inf > 1e-12 and lim.to_record()["status"] == "max_steps_reached"


def _gated_target(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 2))
    beta, w_star = np.array([1.0, -0.5]), np.array([0.8, 0.6])
    gate = 1 / (1 + np.exp(-(X @ w_star)))  # softplus' = sigmoid
    return X, beta, w_star, Dataset(jnp.asarray(X), jnp.asarray(((X @ beta) * gate)[:, None]))


def test_derivative_pair_escape_tends_to_the_gated_unit():
    """Two softplus neurons fitting the derivative neuron ``(β·x) σ'(w*·x)`` escape along a
    derivative pair; the limit model (gated unit) fits it exactly: w = w*, β recovered, c = 0."""
    X, beta, w_star, data = _gated_target()
    ls = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 2, 1), "softplus"), data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=3000, throw=False)
    assert sol.result is RESULTS.diverging
    lim = sol.stats.limit
    assert lim["kind"] == "derivative_pair_limit" and lim["converged"]
    assert lim["grad_norm_inf"] <= TOL["critical_grad_inf"] and lim["loss"] <= 1e-20
    np.testing.assert_allclose(lim["gate"]["w"], w_star, atol=1e-8)
    np.testing.assert_allclose(lim["gate"]["beta"], beta, atol=1e-8)
    assert abs(lim["gate"]["c"]) <= 1e-8


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_gated_limit_loss_is_the_loss_at_infinity(activation):
    """Truth: the empirical loss of the original network with the pair on the channel at scale
    ε (``u_{i,j} = w ± ε b̂/2``, ``v_{i,j} = c/2 ± |β|/ε``) tends to ``L_lim`` like ε²; for odd
    σ the sign-flipped pair has the same limit."""
    from lossatlas.solvers import derivative_pair_limit
    from lossatlas.solvers._limit import _gated_loss

    X, _, _, data = _gated_target(1)
    rng = np.random.default_rng(2)
    W1r, W2r = rng.standard_normal((1, 2)), rng.standard_normal((1, 1))
    w, c, beta = rng.standard_normal(2), 0.7, rng.standard_normal(2)
    phi = np.r_[W1r.ravel(), W2r.ravel(), w, c, beta]
    L_lim = float(_gated_loss(jnp.asarray(phi), data.X, data.Y, activation, 1))
    errs = []
    for eps in (1e-2, 5e-3, 2.5e-3):
        b = np.linalg.norm(beta)
        U = np.vstack([W1r, w + 0.5 * eps * beta / b, w - 0.5 * eps * beta / b])
        V = np.array([[W2r[0, 0], c / 2 + b / eps, c / 2 - b / eps]])
        ls = Landscape(MLP((jnp.asarray(U), jnp.asarray(V)), None, activation), data)
        errs.append(abs(float(ls.loss(jnp.asarray(np.r_[U.ravel(), V.ravel()]))) - L_lim))
    assert errs[0] / errs[1] > 3.5 and errs[1] / errs[2] > 3.5
    if activation == "tanh":  # the same point with neuron 2 sign-flipped: same limit
        lim_a = derivative_pair_limit(ls, np.r_[U.ravel(), V.ravel()], (1, 2), 1, max_steps=0)
        Uf, Vf = U.copy(), V.copy()
        Uf[2], Vf[0, 2] = -U[2], -V[0, 2]
        lsf = Landscape(MLP((jnp.asarray(Uf), jnp.asarray(Vf)), None, activation), data)
        lim_b = derivative_pair_limit(lsf, np.r_[Uf.ravel(), Vf.ravel()], (1, 2), -1, max_steps=0)
        for key in ("w", "beta"):
            np.testing.assert_allclose(lim_a.gate[key], lim_b.gate[key], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lim_a.gate["w"], w, atol=1e-12)
        np.testing.assert_allclose(lim_a.gate["beta"], beta, rtol=1e-12)


def test_derivative_pair_limit_refuses_unsupported_cases():
    from lossatlas._errors import InputError
    from lossatlas.solvers import derivative_pair_limit

    teacher = init_mlp(jax.random.PRNGKey(1), (3, 2, 1), "erf", scale=1.0)
    pop = Landscape(init_mlp(jax.random.PRNGKey(2), (3, 3, 1), "erf"), teacher=teacher)
    with pytest.raises(InputError, match="empirical"):
        derivative_pair_limit(pop, pop.ravel(), (0, 1))
    X, beta, w_star, data = _gated_target()
    relu = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "relu"), data)
    with pytest.raises(InputError, match="smooth"):
        derivative_pair_limit(relu, relu.ravel(), (0, 1))
    sp = Landscape(init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "softplus"), data)
    with pytest.raises(InputError, match="odd"):
        derivative_pair_limit(sp, sp.ravel(), (0, 1), -1)
    with pytest.raises(InputError, match="distinct"):
        derivative_pair_limit(sp, sp.ravel(), (1, 1))
