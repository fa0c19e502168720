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


def test_find_population_from_teacher(capsys, files):
    code, out, err = run(capsys, "find", "--model", files / "student.npz", "--teacher",
                         files / "teacher.npz", "--population", "erf", "--method", "newton", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["population"] is True
    assert doc["grad_norm_inf"] <= TOL["critical_grad_inf"]


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
