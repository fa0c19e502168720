"""``lossatlas deep-linear classify | sample | critical-values`` (issue 5): contract and bad input."""

import itertools as it
import json

import numpy as np
import pytest

from lossatlas.cli import main
from tolerances import TOL


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    np.savez(tmp_path / "data32.npz", X=X.astype(np.float32), Y=Y)
    np.savez(tmp_path / "singular.npz", X=np.ones((30, 4)), Y=Y)
    ws = {"W1": rng.standard_normal((3, 4)), "W2": rng.standard_normal((3, 3))}
    np.savez(tmp_path / "relu.npz", activation=np.array("relu"), **ws)
    np.savez(tmp_path / "bias.npz", activation=np.array("identity"), b1=np.zeros(3),
             b2=np.zeros(3), **ws)
    return tmp_path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["global_minimum", "strict_saddle", "non_strict_saddle"])
def test_sample_then_classify(kind, files, capsys):
    net = files / f"{kind}.npz"
    code, out, err = run(capsys, "deep-linear", "sample", "--kind", kind, "--widths", "4,3,3,3",
                         "--data", files / "data.npz", "--seed", 3, "--out", net, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.deep_linear_sample/1" and doc["label"] == kind
    code, out, err = run(capsys, "deep-linear", "classify", "--model", net, "--data",
                         files / "data.npz", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.deep_linear_classification/1"
    for field in ("label", "rank", "r_max", "S", "critical_value", "loss", "reason",
                  "certificate"):
        assert field in doc
    assert doc["label"] == kind and doc["r_max"] == 3 and doc["rank"] == len(doc["S"])
    assert doc["critical_value"] == pytest.approx(doc["loss"], rel=1e-12)
    assert doc["certificate"]["verified"] is True
    code, out, err = run(capsys, "deep-linear", "classify", "--model", net, "--data",
                         files / "data.npz")
    assert code == 0 and kind in out and "certificate" in out


def test_critical_values(files, capsys):
    code, out, err = run(capsys, "deep-linear", "critical-values", "--data", files / "data.npz",
                         "--widths", "4,2,5,3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.deep_linear_critical_values/1"
    assert doc["count"] == 1 + 3 + 3 and doc["r_max"] == 2 and doc["status"] == "ok"
    values = [v["value"] for v in doc["values"]]
    assert values == sorted(values) and doc["values"][0]["S"] == [1, 2]
    assert doc["values"][0]["kinds"] == ["global_minimum"]
    # independent reference (Baldi & Hornik): with W_ls the least-squares map and L Lᵀ = XᵀX,
    # ||W Xᵀ − Yᵀ||² = ||(W − W_ls) L||² + ||W_ls Xᵀ − Yᵀ||², and the critical point of index set S
    # keeps the singular directions S of W_ls L, so its loss is ½/N (||Y||² − Σ_{i∈S} σ_i²)
    with np.load(files / "data.npz") as z:
        X, Y = z["X"], z["Y"]
    N = X.shape[0]
    W = np.linalg.lstsq(X, Y, rcond=None)[0].T
    s2 = np.linalg.svd(W @ np.linalg.cholesky(X.T @ X), compute_uv=False) ** 2
    np.testing.assert_allclose(doc["eigenvalues"], s2, rtol=TOL["exact_rtol"])
    expected = {(): 0.5 * np.sum(Y**2) / N}
    for S in it.chain.from_iterable(it.combinations((1, 2, 3), k) for k in (1, 2)):
        expected[S] = 0.5 * (np.sum(Y**2) - sum(s2[i - 1] for i in S)) / N
    got = {tuple(v["S"]): v["value"] for v in doc["values"]}
    assert set(got) == set(expected)
    for S, value in expected.items():
        assert got[S] == pytest.approx(value, rel=TOL["exact_rtol"]), S
    assert doc["global_min_value"] == pytest.approx(expected[(1, 2)], rel=TOL["exact_rtol"])
    assert doc["max_value"] == pytest.approx(expected[()], rel=TOL["exact_rtol"])
    code, out, err = run(capsys, "deep-linear", "critical-values", "--data", files / "data.npz",
                         "--widths", "4,2,5,3")
    assert code == 0 and "global_minimum" in out
    # the table prints each value to 10 significant digits
    for value in expected.values():
        assert f"{value:.10g}" in out


@pytest.mark.parametrize("args", [
    ["classify", "--model", "{d}/missing.npz", "--data", "{d}/data.npz"],
    ["classify", "--model", "{d}/relu.npz", "--data", "{d}/data.npz"],
    ["classify", "--model", "{d}/bias.npz", "--data", "{d}/data.npz"],
    ["classify", "--data", "{d}/data.npz"],
    ["sample", "--kind", "saddle", "--widths", "4,3,3", "--data", "{d}/data.npz", "--out",
     "{d}/n.npz"],
    ["sample", "--kind", "global_minimum", "--widths", "4,x,3", "--data", "{d}/data.npz",
     "--out", "{d}/n.npz"],
    ["sample", "--kind", "global_minimum", "--widths", "5,3,3", "--data", "{d}/data.npz",
     "--out", "{d}/n.npz"],
    ["sample", "--kind", "non_strict_saddle", "--widths", "4,3,3", "--data", "{d}/data.npz",
     "--out", "{d}/n.npz"],
    ["sample", "--kind", "global_minimum", "--widths", "4,3,3", "--data", "{d}/data.npz",
     "--out", "{d}/no/such/folder/n.npz"],
    ["sample", "--kind", "global_minimum", "--widths", "4,3,3", "--data", "{d}/data.npz",
     "--out", "{d}/n.npz", "--seed", "-1"],
    ["critical-values", "--data", "{d}/singular.npz", "--widths", "4,3,3"],
    ["critical-values", "--data", "{d}/data32.npz", "--widths", "4,3,3"],
    ["critical-values", "--data", "{d}/data.npz", "--widths", "4"],
])
def test_bad_input_exits_2_with_one_error_line(args, files, capsys):
    code, out, err = run(capsys, "deep-linear", *[a.format(d=files) for a in args])
    assert code == 2
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
