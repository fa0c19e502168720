"""`lossatlas find` and `lossatlas classify`: the JSON contract, results checked independently,
and bad input (one `error:` line, exit code 2, nothing written)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.cli import main
from lossatlas.data import Dataset, load_network, save_data, save_network, teacher_student
from lossatlas.landscape import Landscape
from lossatlas.models import deep_linear, init_mlp
from tolerances import TOL


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("solve")
    teacher = init_mlp(jax.random.PRNGKey(0), (3, 2, 1), "erf", bias=False, scale=1.0)
    save_network(d / "teacher.npz", teacher)
    save_data(d / "data.npz", teacher_student(jax.random.PRNGKey(1), teacher, 100))
    save_network(d / "student.npz", init_mlp(jax.random.PRNGKey(2), (3, 2, 1), "erf", bias=False))
    save_network(d / "tanh.npz", init_mlp(jax.random.PRNGKey(2), (3, 2, 1), "tanh", bias=False))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    Y = X @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((20, 2))
    save_data(d / "lin.npz", Dataset(jnp.asarray(X), jnp.asarray(Y)))
    save_network(d / "zero3.npz", deep_linear([jnp.zeros((3, 3)), jnp.zeros((3, 3)), jnp.zeros((2, 3))]))
    return d


@pytest.mark.parametrize("method", ["newton", "flow-newton"])
def test_find_reaches_machine_precision(capsys, files, tmp_path, method):
    out_net = tmp_path / "crit.npz"
    code, out, err = run(capsys, "find", "--model", files / "student.npz", "--data",
                         files / "data.npz", "--method", method, "--out", out_net, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.find/1"
    for key in ("loss", "grad_norm_inf", "status", "steps", "timings", "classification"):
        assert key in doc
    assert doc["status"] in ("successful", "roundoff_floor")
    # independent check of the written point
    net = load_network(out_net)
    from lossatlas.data import load_data

    ls = Landscape(net, load_data(files / "data.npz"))
    g = np.asarray(jax.grad(ls.objective)(ls.ravel()))
    assert np.max(np.abs(g)) <= TOL["critical_grad_inf"]
    assert doc["grad_norm_inf"] == pytest.approx(np.max(np.abs(g)), rel=1e-3, abs=1e-15)
    assert doc["classification"]["label"] in ("global_minimum", "minimum", "strict_saddle",
                                              "non_strict_saddle", "degenerate_minimum")


def _erf_population_loss(theta, teacher):
    """½ E_x[(f_s(x) − f_t(x))²], x ~ N(0, I), for erf(·/√2) committees, written out by hand:
    E[g(u) g(v)] = (2/π) arcsin(C_uv / sqrt((1 + C_uu)(1 + C_vv))) (Saad & Solla 1995)."""
    W1t, W2t = teacher
    k, d = W1t.shape[0], W1t.shape[1]
    W1, W2 = theta[: k * d].reshape(k, d), theta[k * d:].reshape(1, k)

    def K(A, B):
        c = A @ B.T
        na, nb = 1 + jnp.sum(A * A, axis=1), 1 + jnp.sum(B * B, axis=1)
        return 2 / jnp.pi * jnp.arcsin(c / jnp.sqrt(na[:, None] * nb[None, :]))

    return 0.5 * (W2 @ K(W1, W1) @ W2.T - 2 * W2 @ K(W1, W1t) @ W2t.T
                  + W2t @ K(W1t, W1t) @ W2t.T)[0, 0]


def test_find_population_from_teacher(capsys, files, tmp_path):
    out_net = tmp_path / "pop.npz"
    code, out, err = run(capsys, "find", "--model", files / "student.npz", "--teacher",
                         files / "teacher.npz", "--population", "erf", "--method", "newton",
                         "--out", out_net, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["population"] is True
    assert doc["grad_norm_inf"] <= TOL["critical_grad_inf"]
    # the written end point against the closed-form population loss written out by hand
    net, teacher = load_network(out_net), load_network(files / "teacher.npz")
    theta = jnp.asarray(np.concatenate([np.ravel(w) for w in net.weights]))
    tw = tuple(jnp.asarray(w) for w in teacher.weights)
    loss = float(jax.jit(_erf_population_loss)(theta, tw))
    g = np.asarray(jax.jit(jax.grad(_erf_population_loss))(theta, tw))
    H = np.asarray(jax.jit(jax.hessian(_erf_population_loss))(theta, tw))
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    assert np.max(np.abs(g)) <= TOL["critical_grad_inf"]
    assert doc["loss"] == pytest.approx(loss, abs=TOL["committee_zero_loss_atol"])
    cl = doc["classification"]
    assert cl["label"] == "global_minimum" and cl["index"] == int(np.sum(lam < -cl["tolerance"]))
    # Hessian eigenvalues: two float64 routes, round-off relative to the largest (~1e-16)
    for key, ref in (("min_eigenvalue", lam[0]), ("max_eigenvalue", lam[-1])):
        assert cl[key] == pytest.approx(ref, abs=TOL["exact_rtol"] * lam[-1]), key
    # the global minimum value 0 is reached (the student recovers the teacher)
    assert loss <= TOL["committee_zero_loss_atol"]


def test_classify_contract(capsys, files):
    code, out, err = run(capsys, "classify", "--model", files / "zero3.npz", "--data",
                         files / "lin.npz", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.classification/1"
    assert doc["label"] == "non_strict_saddle"
    assert doc["index"] == 0 and doc["nullity"] == 24
    assert "tolerance" in doc and "reason" in doc["evidence"]
    assert doc["order"] == 3


@pytest.mark.parametrize(
    "args",
    [
        ["find", "--model", "{d}/student.npz", "--data", "{d}/data.npz", "--method", "bogus"],
        ["find", "--model", "{d}/missing.npz", "--data", "{d}/data.npz"],
        ["find", "--model", "{d}/student.npz", "--data", "{d}/data.npz", "--population", "erf"],
        ["find", "--model", "{d}/tanh.npz", "--teacher", "{d}/teacher.npz"],
        ["find", "--model", "{d}/student.npz", "--teacher", "{d}/teacher.npz", "--population", "tanh"],
        ["find", "--model", "{d}/student.npz", "--data", "{d}/data.npz", "--freeze", "W7"],
        ["find", "--model", "{d}/student.npz", "--data", "{d}/data.npz", "--out", "{d}/no/such/dir/x.npz"],
        ["classify", "--model", "{d}/student.npz", "--data", "{d}/lin.npz"],
        ["classify", "--model", "{d}/student.npz", "--data", "{d}/data.npz", "--lam", "-1"],
        ["classify", "--model", "{d}/student.npz"],
    ],
)
def test_bad_input(capsys, files, args):
    code, out, err = run(capsys, *[a.format(d=files) for a in args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert not (files / "no").exists()


def test_find_reports_an_escape_and_its_limit(capsys, tmp_path):
    """One erf neuron on a linear target escapes to infinity (a linear unit): `find` says
    `diverging`, with the evidence and the limit point — the least-squares linear fit."""
    from lossatlas.models import MLP

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    beta = np.array([1.0, -0.5])
    save_data(tmp_path / "lin.npz", Dataset(jnp.asarray(X), jnp.asarray((X @ beta)[:, None])))
    net = MLP((jnp.asarray(rng.standard_normal((1, 2))), jnp.asarray(rng.standard_normal((1, 1)))), None, "erf")
    save_network(tmp_path / "one.npz", net)
    code, out, err = run(capsys, "find", "--model", tmp_path / "one.npz", "--data", tmp_path / "lin.npz",
                         "--method", "newton", "--max-steps", 3000, "--json")
    assert code == 3, err  # ran, but reached no finite critical point
    doc = json.loads(out)
    assert doc["status"] == "diverging" and doc["converged"] is False
    assert doc["escape"]["channels"][0]["kind"] == "linear_neuron"
    lim = doc["limit"]
    assert lim["converged"] and lim["grad_norm_inf"] <= TOL["critical_grad_inf"]
    np.testing.assert_allclose(lim["u"], np.linalg.lstsq(X, X @ beta, rcond=None)[0], atol=1e-10)
