"""The end-point pipeline (`lossatlas.polish`, `lossatlas.classify`) and the library's face.

Truth used: the gradient of a hand-written loss (an independent code path from the library's
model and landscape), row norms and distances computed directly from the arrays, wall-clock
time, and the labels the pipeline's own policy must reproduce from files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import pytest

import lossatlas as la
from lossatlas.cli import main
from lossatlas.data import save_data, save_network, teacher_student
from lossatlas.dynamics import FlowStatus
from lossatlas.pipeline import Producer, policy
from tolerances import TOL


def _erf_problem(m=4, r=2, d=3, n=200, seed=0):
    teacher = la.init_mlp(jax.random.PRNGKey(seed), (d, r, 1), "erf", bias=False, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(seed + 1), teacher, n)
    student = la.init_mlp(jax.random.PRNGKey(seed + 2), (d, m, 1), "erf", bias=False)
    return la.Landscape(student, data), data


def _handwritten_grad(theta, X, Y, m, d):
    """∇ of ½ mean((erf(X W1ᵀ/√2) W2ᵀ − Y)²), written out without lossatlas."""

    def loss(th):
        W1 = th[: m * d].reshape(m, d)
        W2 = th[m * d:].reshape(1, m)
        r = jss.erf(X @ W1.T / jnp.sqrt(2.0)) @ W2.T - Y
        return 0.5 * jnp.mean(jnp.sum(r * r, axis=1))

    return np.asarray(jax.grad(loss)(jnp.asarray(theta)))


def test_polish_reaches_machine_precision_by_an_independent_gradient():
    ls, data = _erf_problem()
    theta0 = np.asarray(ls.ravel())
    end = la.polish(ls, theta0, global_min_value=0.0)
    assert end.converged and end.requested == "flow-newton"
    g = _handwritten_grad(end.theta, data.X, data.Y, 4, 3)
    assert np.max(np.abs(g)) <= TOL["critical_grad_inf"]
    np.testing.assert_allclose(end.grad_norm_inf, np.max(np.abs(g)), rtol=0, atol=TOL["critical_grad_inf"])
    # the distances of the record, from the arrays themselves
    assert end.distance == pytest.approx(np.linalg.norm(end.theta - theta0), rel=1e-15)
    assert end.relative_distance == pytest.approx(end.distance / max(np.linalg.norm(theta0), 1.0), rel=1e-15)
    W0, W1 = theta0[:12].reshape(4, 3), end.theta[:12].reshape(4, 3)
    v0, v1 = np.abs(theta0[12:]), np.abs(end.theta[12:])  # the output neuron's incoming weights
    growth = max(np.max(np.linalg.norm(W1, axis=1) / np.linalg.norm(W0, axis=1)),
                 np.linalg.norm(v1) / np.linalg.norm(v0))
    assert end.max_weight_growth == pytest.approx(max(growth, 1.0), rel=1e-12)
    assert end.classification is not None and end.label is la.Label.global_minimum
    assert end.attempts[0].producer is Producer.saddle_newton


def test_polish_method_names_what_produced_the_point():
    ls, _ = _erf_problem(m=2)
    end = la.polish(ls, ls.ravel(), method="saddle", classify_point=False)
    assert end.method is Producer.saddle_newton or end.method is Producer.trust_region_newton
    assert end.classification is None and end.label is None
    end = la.polish(ls, ls.ravel(), method="newton", classify_point=False)
    assert end.method in (Producer.trust_region_newton, Producer.symmetry_projection)


def test_polish_stops_within_its_time_limit_and_reports_progress():
    """A flow that cannot settle in time (t1 = 1e12, steady state at 1e-15 is never reached on
    this plateau-rich problem within the budget) stops at the deadline plus one chunk of steps."""
    ls, _ = _erf_problem(m=6, n=400)
    seen = []
    la.polish(ls, ls.ravel(), max_time=0.1, classify_point=False)  # compiles the chunked flow
    t0 = time.perf_counter()
    end = la.polish(ls, ls.ravel(), t1=1e12, handoff_tol=1e-15, max_time=1.5, progress=seen.append,
                    classify_point=False)
    took = time.perf_counter() - t0
    assert end.result is la.RESULTS.time_limit_reached and not end.converged
    assert took < 1.5 + 5.0, took  # the deadline, plus one chunk of flow steps and one Newton step
    assert seen and all(isinstance(p, la.Progress) for p in seen)
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)
    assert {p.stage for p in seen} <= {"flow", "newton"}


def test_flow_step_budget_above_the_dense_limit():
    """Above the dense limit the flow of flow-newton is cut to LARGE_FLOW_WORK / (p·n) steps and
    Newton-MR finishes from there: checked by lowering the limit on a small erf problem (the same
    code path as at 10⁵ parameters), against an independent gradient."""
    assert policy.flow_max_steps(85_002, 1797) == int(policy.LARGE_FLOW_WORK // (85_002 * 1797))
    assert policy.flow_max_steps(policy.DENSE_LIMIT, 10**6) == policy.FLOW_MAX_STEPS
    assert policy.flow_max_steps(10**6, 10**6) == policy.LARGE_FLOW_MIN_STEPS
    ls, data = _erf_problem(m=3, r=2, n=100)
    cap = policy.LARGE_FLOW_MIN_STEPS
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(policy, "DENSE_LIMIT", 4)
        mp.setattr(policy, "LARGE_FLOW_WORK", 1.0)
        end = la.polish(ls, ls.ravel(), gtol=1e-11, classify_point=False, continuation=False)
    assert end.flow.stats["num_steps"] <= cap and end.flow.status is FlowStatus.max_steps_reached
    assert end.attempts[0].producer is Producer.newton_mr
    g = _handwritten_grad(end.theta, data.X, data.Y, 3, 3)
    assert end.converged and np.max(np.abs(g)) <= 1e-11


def test_undetermined_above_the_dense_limit_gets_a_deeper_lanczos(monkeypatch):
    """Above the dense limit an undetermined label is retried with DECIDE_LANCZOS_MATVECS
    Hessian-vector products after the round-off polish. The 85 002-parameter case that needs it
    takes minutes, so here the limit is lowered on a small regularised tanh net and the
    Lanczos classifications with the default budget are made to say `undetermined` (as at 85k):
    the deeper pass must be taken, recorded, and its label must be the dense Hessian's truth."""
    import dataclasses

    from lossatlas.pipeline import _polish

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    ls = la.Landscape(la.init_mlp(jax.random.PRNGKey(1), (3, 4, 1), "tanh", bias=True),
                      la.Dataset(jnp.asarray(X), jnp.asarray(Y)), lam=1e-3)
    monkeypatch.setattr(policy, "DENSE_LIMIT", 4)
    monkeypatch.setattr(policy, "LARGE_FLOW_WORK", 1.0)
    real, budgets = _polish._classify, []

    def lanczos_only(*args, **kw):
        kw["dense_limit"] = 4
        budgets.append(kw.get("max_matvecs"))
        c = real(*args, **kw)
        if kw.get("max_matvecs") is None:  # the default budget: under-resolved, as at 85k
            c = dataclasses.replace(c, label=la.Label.undetermined)
        return c

    monkeypatch.setattr(_polish, "_classify", lanczos_only)
    end = la.polish(ls, ls.ravel())
    assert budgets[-1] == policy.DECIDE_LANCZOS_MATVECS and budgets[:-1] == [None] * (len(budgets) - 1)
    stages = [s.stage.value for s in end.continuation.steps]
    assert stages[-1] == "deeper_lanczos" and end.continuation.ended.value == "critical"
    H = np.asarray(jax.hessian(ls.objective)(jnp.asarray(end.theta)))
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    assert lam[0] > 1e-4 and end.label is la.Label.minimum and end.converged


def test_classify_uses_the_policy_threshold():
    """A point with ||∇L||∞ just above 10·max(gtol, floor) is not critical; the same point
    judged with a given, looser grad_tol is."""
    ls, _ = _erf_problem(m=2)
    end = la.polish(ls, ls.ravel(), classify_point=False)
    assert end.converged
    theta = end.theta.copy()
    theta[0] += 1e-7  # moves the gradient to ~1e-7 · ||H||
    c = la.classify(ls, theta)
    assert c.label is la.Label.not_critical
    assert c.evidence.grad_tol == pytest.approx(policy.critical_tolerance(1e-12, la.pipeline.measured_floor(
        ls, theta)), rel=1e-12)
    assert la.classify(ls, theta, grad_tol=1e-3).label is not la.Label.not_critical


def test_face_lists_the_verbs_and_takes_torch_tensors():
    names = set(dir(la))
    for n in ("Landscape", "polish", "EndPoint", "find_critical_point", "classify", "RESULTS", "lanczos_extreme",
              "dense_hessian", "from_torch", "to_torch", "init_mlp", "load_network", "save_network", "load_data"):
        assert n in names and getattr(la, n) is not None
    torch = pytest.importorskip("torch")
    ls, data = _erf_problem(m=2)
    X = torch.tensor(np.asarray(data.X))
    ds = la.Dataset(X, torch.tensor(np.asarray(data.Y)))
    np.testing.assert_array_equal(np.asarray(ds.X), np.asarray(data.X))
    th = torch.tensor(np.asarray(ls.ravel()))
    assert la.classify(ls, th).loss == pytest.approx(float(ls.loss(ls.ravel())), rel=1e-15)
    with pytest.raises(la.InputError, match="double"):
        la.classify(ls, th.float())
    with pytest.raises(la.InputError, match="double"):
        la.Dataset(X.float(), torch.tensor(np.asarray(data.Y)))


@pytest.fixture(scope="module")
def relu_files(tmp_path_factory):
    """A 10→8→1 ReLU net on scikit-learn's diabetes data (standardised)."""
    sklearn = pytest.importorskip("sklearn.datasets")
    X, y = sklearn.load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    folder = tmp_path_factory.mktemp("relu")
    save_data(folder / "data.npz", la.Dataset(jnp.asarray(X), jnp.asarray(y[:, None])))
    save_network(folder / "net.npz", la.init_mlp(jax.random.PRNGKey(0), (10, 8, 1), "relu"))
    return folder


def test_find_honours_its_time_limit_with_progress_and_exit_code(relu_files, capsys):
    """`lossatlas find --time-limit` on a ReLU net: exit 0 with converged true or exit 3 with converged
    false; the command as a user runs it returns within the limit plus start-up and compilation,
    shows its progress on stderr and says what happened; --quiet and --json show none."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "lossatlas", "find", "--model", str(relu_files / "net.npz"),
                        "--data", str(relu_files / "data.npz"), "--time-limit", "8"],
                       capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    assert p.returncode in (0, 3), p.stderr
    assert took < 8 + 60, took  # the limit, plus start-up and compilation on a loaded machine
    assert "lossatlas find:" in p.stderr and "‖∇L‖∞" in p.stderr  # the progress line (after 2 s)
    if p.returncode == 3:
        assert "No critical point reached" in p.stdout and "Try:" in p.stdout
    code = main(["find", "--model", str(relu_files / "net.npz"), "--data", str(relu_files / "data.npz"),
                 "--time-limit", "4", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code in (0, 3) and doc["converged"] is (code == 0)
    assert doc["polish_method"] == "pattern_newton"  # what actually produced the point
    for k in ("distance_moved", "relative_distance_moved", "max_weight_growth"):
        assert k in doc and doc[k] >= 0
    assert "lossatlas find:" not in err


def test_find_refuses_a_bad_time_limit(capsys, relu_files):
    code = main(["find", "--model", str(relu_files / "net.npz"), "--data", str(relu_files / "data.npz"),
                 "--time-limit", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --time-limit") and len(err.strip().splitlines()) == 1
