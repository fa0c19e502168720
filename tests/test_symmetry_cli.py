"""CLI tests for ``lossatlas count`` and ``lossatlas symmetry reduce|embed|connect`` (issue 4).

Kinds of truth: exact counts against the library's closed forms and known values; files
written by the CLI checked against independent constructions (the DESIGN.md flat order built
by hand, the narrow network's function); the bad-input contract (one ``error:`` line on
stderr, exit code 2, no traceback).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.cli import main
from lossatlas.data import load_network, save_data, save_network, teacher_student
from lossatlas.models import init_mlp
from lossatlas.symmetry import (
    LabelMap,
    count_G,
    count_T,
    count_T_zero_loss,
    embed,
    equivalent,
    permute,
    saddle_to_minimum_ratio,
)
from tolerances import TOL

G_ACT = "sigmoid4_plus_softplus"


def run(capsys, *args):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args):
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_bad_input(capsys, *args):
    code, out, err = run(capsys, *args)
    assert code == 2, (code, out, err)
    assert err.startswith("error:"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A width-3 teacher (a zero-loss global minimum of its data) and its data file."""
    folder = tmp_path_factory.mktemp("sym")
    teacher = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), G_ACT, bias=True, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(1), teacher, 40)
    save_network(folder / "teacher.npz", teacher)
    save_data(folder / "data.npz", data)
    return folder, teacher, data


# ---------------------------------------------------------------------------------------------
# count
# ---------------------------------------------------------------------------------------------


def test_count_known_values(capsys):
    doc = run_json(capsys, "count", "--r", 3, "--m", 5)
    assert doc["schema"] == "lossatlas.count/1"
    assert (doc["T"], doc["G"], doc["T_zero_loss"]) == (390, 150, 450)  # notes §3.4
    assert doc["saddle_to_minimum_ratio"] == "1/13"  # G(2, 5)/T(3, 5) = 30/390
    doc = run_json(capsys, "count", "--r", 2, "--m", 4)
    assert (doc["T"], doc["G"], doc["T_zero_loss"]) == (50, 14, 62)
    code, out, _ = run(capsys, "count", "--r", 3, "--m", 5)
    assert code == 0 and "390" in out and "T_zero_loss" in out and "1/13" in out


def test_count_m_1000_is_exact(capsys):
    # Its speed is measured in benchmarks/count_speed.py, not asserted here (a busy machine).
    code, out, err = run(capsys, "count", "--r", 7, "--m", 1000, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["T"] == count_T(7, 1000) and doc["G"] == count_G(7, 1000)
    assert doc["T_zero_loss"] == count_T_zero_loss(7, 1000)
    ratio = saddle_to_minimum_ratio(7, 1000)
    assert doc["saddle_to_minimum_ratio"] == f"{ratio.numerator}/{ratio.denominator}"
    code, out, _ = run(capsys, "count", "--r", 7, "--m", 1000)  # human table: rounded
    assert code == 0 and "digits" in out


def test_count_multilayer_widths(capsys):
    doc = run_json(capsys, "count", "--widths", "2:3,3:4")
    assert doc["widths"] == [[2, 3], [3, 4]]
    assert doc["T"] == count_T(2, 3) * count_T(3, 4)
    assert doc["G"] == count_G(2, 3) * count_G(3, 4)
    assert doc["T_zero_loss"] == count_T_zero_loss(2, 3) * count_T_zero_loss(3, 4)


@pytest.mark.parametrize("args", [
    ("--r", 6, "--m", 5),        # r > m
    ("--r", 0, "--m", 5),        # r < 1
    ("--r", -2, "--m", 5),
    ("--r", "2.5", "--m", 5),    # not an integer
    ("--r", "two", "--m", 5),
    ("--r", 2, "--m", "1e3"),
    ("--r", 2),                  # --m missing
    ("--widths", "2:3,4:3"),     # r > m in a layer
    ("--widths", "2-3"),
    ("--widths", "2:x"),
    ("--widths", "2:3", "--r", 2, "--m", 3),
])
def test_count_bad_input(capsys, args):
    assert_bad_input(capsys, "count", *args)


# ---------------------------------------------------------------------------------------------
# symmetry reduce / embed
# ---------------------------------------------------------------------------------------------


def test_reduce_reports_the_label_map_and_writes_the_minimal_network(capsys, files, tmp_path):
    folder, teacher, _ = files
    lm = LabelMap(((1, 0, 3, 2, 1, 0),), (3,))
    wide = embed(teacher, lm, key=jax.random.PRNGKey(2), gammas=[[0.3, 0, 1, 1, 0.7, 0]])
    save_network(tmp_path / "wide.npz", wide.network)
    doc = run_json(capsys, "symmetry", "reduce", "--model", tmp_path / "wide.npz",
                   "--out", tmp_path / "narrow.npz")
    assert doc["schema"] == "lossatlas.reduction/1"
    assert doc["wide_widths"] == [6] and doc["minimal_widths"] == [3]
    assert doc["on_expansion_manifold"] is True
    layer = doc["layers"][0]
    # narrow neurons are numbered by first appearance: wide 0 -> 1, wide 2 -> 2, wide 3 -> 3
    assert layer["labels"] == [1, 0, 2, 3, 1, 0]
    assert layer["zero_neurons"] == [1, 5]
    assert doc["subspace_dim"] == 1 * (6 - 2 - 3) + 3 * 2  # d_out(m-k0-r) + (d+1) k0
    assert doc["distance"] <= TOL["subspace_basis_atol"]
    narrow = load_network(tmp_path / "narrow.npz")
    assert equivalent(narrow, teacher, tol=TOL["equivalence_rtol"])
    code, out, _ = run(capsys, "symmetry", "reduce", "--model", tmp_path / "wide.npz")
    assert code == 0 and "minimal_widths" in out


def test_embed_writes_a_wide_network_with_the_same_function(capsys, files, tmp_path):
    folder, teacher, data = files
    out_path = tmp_path / "wide.npz"
    doc = run_json(capsys, "symmetry", "embed", "--model", folder / "teacher.npz",
                   "--width", 7, "--split", "0=0.3,0.7", "--split", "2:3", "--out", out_path)
    assert doc["schema"] == "lossatlas.embedding/1"
    assert doc["wide_widths"] == [2, 7, 1]
    labels = doc["label_map"][0]["labels"]
    assert labels == [1, 2, 3, 1, 3, 3, 0]
    assert doc["gammas"][0] == pytest.approx([0.3, 1, 1 / 3, 0.7, 1 / 3, 1 / 3, 0])
    assert doc["subspace_dim"] == 1 * (7 - 1 - 3) + 3 * 1
    wide = load_network(out_path)
    X = data.X
    assert np.max(np.abs(np.asarray(wide(X) - teacher(X)))) <= TOL["symmetry_function_atol"]
    np.testing.assert_array_equal(np.asarray(wide.weights[0])[3], np.asarray(teacher.weights[0])[0])
    np.testing.assert_allclose(np.asarray(wide.weights[1])[0, [0, 3]],
                               np.asarray(teacher.weights[1])[0, 0] * np.array([0.3, 0.7]))


@pytest.mark.parametrize("extra", [
    ("--width", 2),                      # narrower than the network
    ("--width", 4, "--split", "0=0.5,0.6"),  # ratios do not sum to 1
    ("--width", 4, "--split", "5:2"),    # no such neuron
    ("--width", 4, "--split", "0:3"),    # needs width 5
    ("--width", 4, "--split", "x"),
    ("--width", 4, "--layer", 2),        # no hidden layer 2
    ("--width", "four"),
])
def test_embed_bad_input(capsys, files, tmp_path, extra):
    folder, _, _ = files
    assert_bad_input(capsys, "symmetry", "embed", "--model", folder / "teacher.npz",
                     "--out", tmp_path / "w.npz", *extra)
    assert not (tmp_path / "w.npz").exists()


def test_reduce_bad_input(capsys, tmp_path):
    assert_bad_input(capsys, "symmetry", "reduce", "--model", tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip file")
    assert_bad_input(capsys, "symmetry", "reduce", "--model", tmp_path / "junk.npz")


# ---------------------------------------------------------------------------------------------
# symmetry connect
# ---------------------------------------------------------------------------------------------


def test_connect_writes_waypoints_in_design_order(capsys, files, tmp_path):
    folder, teacher, _ = files
    out_path = tmp_path / "path.npz"
    doc = run_json(capsys, "symmetry", "connect", "--model", folder / "teacher.npz",
                   "--data", folder / "data.npz", "--permutation", "2,0,1", "--out", out_path)
    assert doc["schema"] == "lossatlas.path/1"
    assert doc["max_loss"] <= TOL["path_zero_loss_atol"]
    assert doc["n_segments"] == 2 * (3 + 1) + 1  # one 3-cycle: 4 moves of 2 segments + 1
    with np.load(out_path, allow_pickle=False) as z:
        W = z["waypoints"]
        loss = z["loss"]
    # flat order W1, b1, W2, b2 (row-major) of the width-4 network with a silent spare neuron
    W1, b1, W2, b2 = (np.asarray(a) for a in (teacher.weights[0], teacher.biases[0],
                                                 teacher.weights[1], teacher.biases[1]))

    def flat(w1, bb1, w2):
        return np.concatenate([w1.ravel(), bb1, w2.ravel(), b2])

    start = flat(np.vstack([W1, np.zeros(2)]), np.append(b1, 0.0), np.hstack([W2, [[0.0]]]))
    p = [2, 0, 1]
    end = flat(np.vstack([W1[p], np.zeros(2)]), np.append(b1[p], 0.0),
               np.hstack([W2[:, p], [[0.0]]]))
    n_params = 4 * 2 + 4 + 4 + 1
    assert W.shape == (doc["n_waypoints"], doc["n_params"]) == (doc["n_segments"] + 1, n_params)
    np.testing.assert_array_equal(W[0], start)
    np.testing.assert_array_equal(W[-1], end)
    assert np.max(loss) == pytest.approx(doc["max_loss"], abs=0)
    code, out, _ = run(capsys, "symmetry", "connect", "--model", folder / "teacher.npz",
                       "--data", folder / "data.npz", "--permutation", "1,0,2",
                       "--out", out_path)
    assert code == 0 and "max_loss" in out and "n_segments" in out


@pytest.mark.parametrize("perm", ["2,0,0", "2,0", "0,1,2,3", "a,b,c", "3,0,1", "1.5,0,2", ""])
def test_connect_rejects_what_is_not_a_permutation(capsys, files, tmp_path, perm):
    folder, _, _ = files
    err = assert_bad_input(capsys, "symmetry", "connect", "--model", folder / "teacher.npz",
                           "--data", folder / "data.npz", "--permutation", perm,
                           "--out", tmp_path / "p.npz")
    assert "permutation" in err
    assert not (tmp_path / "p.npz").exists()


def test_connect_other_bad_input(capsys, files, tmp_path):
    folder, _, _ = files
    common = ("--model", folder / "teacher.npz", "--permutation", "1,2,0")
    assert_bad_input(capsys, "symmetry", "connect", *common, "--data", tmp_path / "none.npz",
                     "--out", tmp_path / "p.npz")
    assert_bad_input(capsys, "symmetry", "connect", *common, "--data", folder / "data.npz",
                     "--out", tmp_path / "no" / "p.npz")
    assert_bad_input(capsys, "symmetry", "connect", *common, "--data", folder / "data.npz",
                     "--out", tmp_path / "p.npz", "--samples-per-segment", 0)
    other = init_mlp(jax.random.PRNGKey(5), (3, 3, 1), G_ACT)  # input width 3, data has 2
    save_network(tmp_path / "other.npz", other)
    assert_bad_input(capsys, "symmetry", "connect", "--model", tmp_path / "other.npz",
                     "--permutation", "1,2,0", "--data", folder / "data.npz",
                     "--out", tmp_path / "p.npz")


def test_connect_then_reduce_round_trip(capsys, files, tmp_path):
    # Every waypoint of the path is a width-4 network that reduces back to the teacher.
    folder, teacher, _ = files
    run_json(capsys, "symmetry", "connect", "--model", folder / "teacher.npz", "--data",
             folder / "data.npz", "--permutation", "1,0,2", "--out", tmp_path / "p.npz",
             "--samples-per-segment", 4)
    from lossatlas.symmetry import reduce_network
    from lossatlas.symmetry._common import unravel_network

    template = permute(embed(teacher, LabelMap(((1, 2, 3, 0),), (3,))).network, [None])
    with np.load(tmp_path / "p.npz") as z:
        for x in z["waypoints"]:
            red = reduce_network(unravel_network(template, jnp.asarray(x)))
            assert red.narrow.hidden_widths == (3,)
            assert equivalent(red.narrow, teacher, tol=TOL["equivalence_rtol"])


@pytest.mark.slow
def test_example_script_runs_and_writes_its_figure(tmp_path, capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "symmetry_counts_and_path.py"
    out = tmp_path / "path.png"
    module = runpy.run_path(str(script), run_name="example")
    module["main"](str(out))
    printed = capsys.readouterr().out
    assert "T(r*, m)" in printed and "46620" in printed  # T(3, 8) from the notes' table
    assert out.stat().st_size > 10_000
