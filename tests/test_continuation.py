"""The continuation of `lossatlas.polish` (issue 19 item 3): a run whose flow is still moving when
the first flow-and-Newton pass ends goes on — longer flow, Newton again, negative-curvature steps,
the trust-region minimiser — until a verified critical point, a certified escape to infinity, or a
budget, and its record says which.

Truth used (none of it calls the landscape code under test): the erf population loss written out
with the arcsin kernel and an empirical squared loss written out by hand, their gradients and dense
Hessians by `jax.grad` / `jax.hessian` of those hand-written functions and `numpy.linalg.eigvalsh`;
for the escape, the parameters' own norms; for budgets, the policy's constants and the wall clock.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import pytest

import lossatlas as la
from lossatlas.data import Dataset
from lossatlas.models import MLP
from lossatlas.pipeline import policy
from tolerances import TOL

D = 4
#: The flow of this run (width-3 student of a width-2 erf teacher, d = 4, population loss; the
#: atlas' run "r* = 2, m = 3, seed 19") is still crossing the slow approach to a degenerate
#: zero-loss minimum at this time: the first pass stops at ||∇L||∞ ~ 6e-6 with Newton
#: `gradient_flat` (measured: the same run converges with t1 = 1e4 and stalls with t1 = 3e4 and
#: 1e5, the atlas' default).
PLATEAU_T1 = 3e4
#: The atlas' flow solver (explicit Tsit5): compiles in seconds where the implicit default takes a minute.
ATLAS_FLOW = {"flow_solver": "tsit5"}


def _plateau_problem():
    teacher = la.init_mlp(jax.random.PRNGKey(0), (D, 2, 1), "erf", bias=False, scale=1.0)
    key = jax.random.fold_in(jax.random.PRNGKey(19), 7919)  # the atlas' student seed of run 19
    student = la.init_mlp(jax.random.fold_in(key, 3), (D, 3, 1), "erf", bias=False, scale="xavier")
    return la.Landscape(student, teacher=teacher), teacher


def _erf_population_loss(theta, teacher):
    """½ E_x (Σ a_i erf(w_i·x/√2) − Σ b_j erf(v_j·x/√2))², x ~ N(0, I), with
    E[erf(u·x/√2) erf(v·x/√2)] = (2/π) arcsin(u·v / √((1+|u|²)(1+|v|²)))."""
    m = theta.size // (D + 1)
    W, a = theta[: m * D].reshape(m, D), theta[m * D:]
    V, b = jnp.asarray(teacher.weights[0]), jnp.asarray(teacher.weights[1]).ravel()

    def K(A, B):
        na, nb = jnp.sqrt(1 + jnp.sum(A * A, 1)), jnp.sqrt(1 + jnp.sum(B * B, 1))
        return (2 / jnp.pi) * jnp.arcsin((A @ B.T) / (na[:, None] * nb[None, :]))

    return 0.5 * (a @ K(W, W) @ a - 2 * a @ K(W, V) @ b + b @ K(V, V) @ b)


def _by_hand(loss, theta):
    """Loss, ``||∇L||∞`` and the ascending Hessian spectrum of a hand-written loss at θ."""
    th = jnp.asarray(theta)
    H = np.asarray(jax.hessian(loss)(th))
    return (float(loss(th)), float(np.max(np.abs(np.asarray(jax.grad(loss)(th))))),
            np.linalg.eigvalsh(0.5 * (H + H.T)))


def test_a_plateau_run_continues_to_a_verified_critical_point():
    ls, teacher = _plateau_problem()
    theta0 = np.asarray(ls.ravel())
    before = la.polish(ls, theta0, t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW, continuation=False)
    assert before.label.value == "not_critical" and before.result.name == "gradient_flat"
    assert before.continuation is None and "continuation" not in before.to_record()

    end = la.polish(ls, theta0, t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW)
    assert end.converged and end.label.value == "global_minimum"
    # independent truth at the returned point: the hand-written loss, gradient and Hessian
    loss, g_inf, lam = _by_hand(lambda th: _erf_population_loss(th, teacher), end.theta)
    assert g_inf <= TOL["critical_grad_inf"]
    assert abs(loss) <= TOL["committee_zero_loss_atol"]
    tol = end.classification.tolerance  # the classification's own eigenvalue tolerance
    assert int(np.sum(lam < -tol)) == end.classification.index == 0  # PSD: a minimum, at zero loss
    # the record says how it ended: the flow went on past t1, then Newton converged
    c = end.continuation
    assert c.ended.value == "critical" and c.limit is None and c.trigger == "gradient_flat"
    assert [s.value for s in c.stages][:1] == ["longer_flow"] and c.steps[-1].status in ("successful", "roundoff_floor")
    assert c.steps[0].t > PLATEAU_T1 and c.flow_time >= c.steps[0].t
    rec = json.loads(json.dumps(end.to_record()))  # JSON-ready
    assert rec["continuation"] == c.summary and rec["continuation"].startswith("critical:longer_flow")
    assert rec["continuation_detail"]["ended"] == "critical"
    assert rec["continuation_detail"]["stages"] == [s.value for s in c.stages]
    assert [s["stage"] for s in rec["continuation_detail"]["steps"]][0] == "longer_flow"
    assert end.timings.continuation > 0 and end.timings.continuation <= end.timings.total


def test_a_converged_run_is_not_continued():
    """The continuation never runs (nor costs anything) when the first pass converges."""
    ls, _ = _plateau_problem()
    end = la.polish(ls, ls.ravel(), t1=1e4, global_min_value=0.0, **ATLAS_FLOW)  # converges in the first pass
    assert end.converged and end.continuation is None and end.timings.continuation == 0.0
    assert "continuation" not in end.to_record()


def test_the_continuation_budget_is_said(monkeypatch):
    ls, _ = _plateau_problem()
    theta0 = np.asarray(ls.ravel())
    # the continuation's own time cap: it stops before its first stage and says so
    monkeypatch.setattr(policy, "CONTINUATION_MAX_TIME", 1e-9)
    end = la.polish(ls, theta0, t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW)
    c = end.continuation
    assert c.ended.value == "budget" and c.limit == "continuation_time" and c.steps == ()
    assert end.to_record()["continuation"] == "budget:" and "CONTINUATION_MAX_TIME" in c.reason
    assert not end.converged and end.label.value == "not_critical"
    assert end.result.name == "gradient_flat"  # the polish's own budget did not run out
    # a tiny max_time: the polish runs out, and the continuation says it had no time
    monkeypatch.undo()
    end = la.polish(ls, theta0, t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW, max_time=1e-3)
    assert end.result.name == "time_limit_reached" and not end.converged
    assert end.continuation.ended.value == "budget" and end.continuation.limit == "max_time"
    assert end.continuation.steps == () and end.timings.continuation < 1.0  # it spent nothing
    assert end.to_record()["continuation"].startswith("budget:")


def test_the_negative_curvature_step_descends_along_the_lowest_eigenvector():
    """The continuation's step off a saddle, at the saddle θ = 0 of the erf population loss (all
    neurons silent: ∇L = 0, and the input-output cross terms −σ'(0) a w·E[x y] of the Hessian make it
    indefinite): the step lies in the eigenspace of the most negative eigenvalue of the
    hand-written Hessian, has one of the policy's lengths, and lowers the hand-written loss by at
    least the policy's share of the quadratic model ½|λ_min|α²."""
    from lossatlas.pipeline._polish import _curvature_step

    ls, teacher = _plateau_problem()
    theta = np.zeros(ls.n_params)
    loss0, g_inf, lam = _by_hand(lambda th: _erf_population_loss(th, teacher), theta)
    assert g_inf == 0.0 and lam[0] < 0
    new, details = _curvature_step(ls, theta)
    H = np.asarray(jax.hessian(lambda th: _erf_population_loss(th, teacher))(jnp.asarray(theta)))
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    low = V[:, np.abs(lam - lam[0]) <= TOL["exact_rtol"] * np.max(np.abs(lam))]  # the λ_min eigenspace
    assert low.shape[1] == 3  # one per neuron: the three silent neurons are interchangeable
    step = new - theta
    alpha = float(np.linalg.norm(step))
    assert alpha == pytest.approx(details["step_length"], rel=1e-12)
    assert any(alpha == pytest.approx(c, rel=1e-12) for c in policy.CURVATURE_STEPS)  # max(1, ||θ||∞) = 1
    assert float(np.linalg.norm(low.T @ step)) == pytest.approx(alpha, rel=TOL["exact_rtol"])
    assert details["eigenvalue"] == pytest.approx(lam[0], rel=TOL["exact_rtol"])
    drop = loss0 - float(_erf_population_loss(jnp.asarray(new), teacher))
    assert drop >= policy.CURVATURE_DECREASE * 0.5 * abs(lam[0]) * alpha ** 2


def test_the_flow_time_cap_is_said(monkeypatch):
    """A flow already at the continuation's flow-time cap is not continued; the record says so."""
    ls, _ = _plateau_problem()
    monkeypatch.setattr(policy, "CONTINUATION_MAX_FLOW_TIME", PLATEAU_T1)
    end = la.polish(ls, ls.ravel(), t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW)
    c = end.continuation
    assert c.ended.value == "budget" and c.limit == "flow_time" and c.rounds == 0 and c.steps == ()
    assert not end.converged and end.label.value == "not_critical"


@pytest.mark.slow
def test_without_rounds_the_minimiser_continues_from_the_flow_point(monkeypatch):
    """With no flow-Newton rounds left, the last stage — the trust-region minimiser from the flow
    point — still reaches a critical point, verified by hand."""
    ls, teacher = _plateau_problem()
    monkeypatch.setattr(policy, "CONTINUATION_ROUNDS", 0)
    end = la.polish(ls, ls.ravel(), t1=PLATEAU_T1, global_min_value=0.0, **ATLAS_FLOW)
    assert end.continuation.summary == "critical:trust_region" and end.continuation.rounds == 0
    assert end.converged and end.method.value == "trust_region_newton"
    loss, g_inf, lam = _by_hand(lambda th: _erf_population_loss(th, teacher), end.theta)
    assert g_inf <= TOL["critical_grad_inf"] and abs(loss) <= TOL["committee_zero_loss_atol"]
    assert end.label.value == "global_minimum" and lam[0] >= -end.classification.tolerance


def _linear_plus_erf_problem(seed):
    """Two erf neurons on y = β·x + 0.7 erf(w*·x/√2) (200 samples, d = 2): one neuron fits the erf
    term, the other can only fit the linear term as a linear unit at infinity (w → 0, a → ∞)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = X @ np.array([1.0, -0.5]) + 0.7 * np.asarray(jss.erf(jnp.asarray(X @ np.array([0.8, 0.6]) / np.sqrt(2))))
    r = np.random.default_rng(seed)
    net = MLP((jnp.asarray(r.standard_normal((2, 2))), jnp.asarray(r.standard_normal((1, 2)))), None, "erf")
    return la.Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(y[:, None]))), X, y


@pytest.mark.slow
def test_a_run_escaping_to_infinity_ends_diverging():
    ls, X, y = _linear_plus_erf_problem(4)
    before = la.polish(ls, ls.ravel(), t1=100.0, continuation=False)
    assert before.label.value == "not_critical" and before.result.name == "gradient_flat"
    end = la.polish(ls, ls.ravel(), t1=100.0)
    assert end.result.name == "diverging" and not end.converged
    c = end.continuation
    assert c.ended.value == "diverging" and c.stages[0].value == "longer_flow" and c.stages[-1].value == "infinity"
    rec = json.loads(json.dumps(end.to_record()))
    assert rec["continuation"].startswith("diverging:longer_flow") and rec["continuation"].endswith("+infinity")
    assert rec["status"] == "diverging" and rec["escape"]["channels"]
    # independent truth: the loss written out by hand at the returned point, and the channel's
    # geometry from the arrays: a linear unit (|w_c| ≪ |a_c|) whose product tends to the linear fit
    W, a = end.theta[:4].reshape(2, 2), end.theta[4:]
    pred = jss.erf(jnp.asarray(X @ W.T) / np.sqrt(2)) @ jnp.asarray(a)
    assert float(0.5 * np.mean((np.asarray(pred) - y) ** 2)) == pytest.approx(end.loss, rel=1e-10)
    ch = end.escape["channels"][0]
    assert ch["kind"] == "linear_neuron"
    (k,) = ch["neurons"]
    assert np.linalg.norm(W[k]) < 0.05 * abs(a[k])
    assert end.escape["norm_end"] > end.escape["norm_start"] and end.escape["loss_end"] < end.escape["loss_start"]
    assert end.limit is not None and end.limit["loss"] <= end.loss


def _narrow_minimum():
    """A width-2 erf student of a width-3 teacher (d = 4, population): a non-degenerate minimum,
    and its smallest Hessian eigenpair."""
    teacher = la.init_mlp(jax.random.PRNGKey(0), (D, 3, 1), "erf", bias=False, scale=1.0)
    ls = la.Landscape(la.init_mlp(jax.random.PRNGKey(100), (D, 2, 1), "erf", bias=False, scale="xavier"),
                      teacher=teacher)
    star = la.polish(ls, ls.ravel(), method="newton", continuation=False)
    assert star.converged and star.label.value == "minimum"
    _, _, lam = _by_hand(lambda th: _erf_population_loss(th, teacher), star.theta)
    H = np.asarray(jax.hessian(lambda th: _erf_population_loss(th, teacher))(jnp.asarray(star.theta)))
    v = np.linalg.eigh(0.5 * (H + H.T))[1][:, 0]
    return ls, teacher, star.theta, lam[0], v


@pytest.mark.slow
def test_an_undetermined_label_is_decided_by_polishing_further():
    """A point accepted by a loose `gtol` whose gradient is comparable to the smallest Hessian
    eigenvalue: the eigenvalue tolerance (which contains ||∇L||₂) cannot split the spectrum, so
    the first label is `undetermined`. Polished to the round-off floor, the same minimum is
    labelled `minimum`, and the record says so."""
    ls, teacher, star, lam_min, v = _narrow_minimum()
    assert lam_min > 0
    start = star + 0.5 * v  # ||∇L||₂ ≈ λ_min / 2: inside the ambiguous band (tol, 10 tol)
    gtol = 1e-2
    before = la.polish(ls, start, method="saddle", gtol=gtol, continuation=False)
    assert before.converged and before.label.value == "undetermined"
    end = la.polish(ls, start, method="saddle", gtol=gtol)
    assert end.label.value == "minimum" and end.converged
    loss, g_inf, lam = _by_hand(lambda th: _erf_population_loss(th, teacher), end.theta)
    assert g_inf <= TOL["critical_grad_inf"]
    assert lam[0] > 10 * end.classification.tolerance  # positive definite, clearly
    np.testing.assert_allclose(end.theta, star, rtol=0, atol=1e-8)  # the minimum it started near
    c = end.continuation
    assert c.trigger == "undetermined" and c.ended.value == "critical"
    assert end.to_record()["continuation"] == "critical:newton"
    assert c.steps[-1].details["label"] == "minimum"
