"""The atlas: a tiny sweep end to end, resume after kill -9, the dask executor with a worker
killed mid-sweep, invalid specs, and the report's figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_SWEEP
from lossatlas.cli import main
from lossatlas.experiments import Store, load_spec, plan, run_sweep, spec_from_dict
from lossatlas.report import FIGURES


def _spec(tmp_path, seeds=2):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_SWEEP.format(seeds=seeds))
    return p


def _check_store(out: Path, n_runs: int):
    store = Store(out)
    recs = store.records()
    ids = [r["run_id"] for r in recs]
    assert len(ids) == len(set(ids)) == n_runs
    assert not list(out.rglob(".*.tmp*")), "a temporary file survived"
    for r in recs:
        arrays = store.arrays(r["run_id"])  # every record has its arrays, readable
        if r["run_status"] == "ok" and "n_params" in r:
            assert arrays["theta"].shape[0] == r["n_params"]
    return recs


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    spec = _spec(tmp_path)
    out = tmp_path / "out"
    code = main(["atlas", str(spec), "--out", str(out), "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(o)
    assert doc["schema"] == "lossatlas.atlas/1"
    assert doc["sweep"]["total"] == 6 and doc["sweep"]["computed"] == 6
    recs = _check_store(out, 6)
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 6
    for r in recs:
        assert r["run_status"] == "ok", r
        if r["polish_status"] in ("successful", "roundoff_floor"):
            assert r["grad_norm_inf"] <= 1e-12 or r["grad_norm_inf"] <= r["gradient_floor"]
        # the width-1 student cannot fit a width-2 teacher: never a zero-loss global minimum
        if r["width"] == "1":
            assert r["label"] != "global_minimum" and r["loss"] > 1e-6
        if r["label"] == "global_minimum":
            assert abs(r["loss"]) <= 1e-12
            assert r["reduced_width"] == 2  # the end point reduces to the teacher's width
    _check_endpoints_independently(out, recs, capsys)
    # the report holds every figure and they are real PNGs
    for name in FIGURES:
        p = out / "figures" / f"{name}.png"
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    for name in FIGURES:
        assert f"figures/{name}.png" in page
    path = json.loads((out / "extras" / "path.json").read_text())
    if path["available"]:
        assert path["max_loss_deviation"] <= 1e-12
    # a rerun computes nothing and the report command rebuilds from the store alone
    code = main(["atlas", str(spec), "--out", str(out), "--json"])
    doc = json.loads(capsys.readouterr()[0])
    assert doc["sweep"]["computed"] == 0 and doc["sweep"]["skipped"] == 6
    code = main(["report", str(out), "--json"])
    assert code == 0
    assert set(json.loads(capsys.readouterr()[0])["figures"]) == set(FIGURES)


def _erf_population_loss(theta, teacher_W1, teacher_W2, d):
    """½ E_x (Σ a_i erf(w_i·x/√2) − Σ b_j erf(v_j·x/√2))², x ~ N(0, I), written out with
    E[erf(u·x/√2) erf(v·x/√2)] = (2/π) arcsin(u·v / √((1+|u|²)(1+|v|²))) — independent of
    lossatlas' landscape code."""
    import jax.numpy as jnp

    m = (theta.size) // (d + 1)
    W, a = theta[: m * d].reshape(m, d), theta[m * d:]

    def K(A, B):
        na, nb = jnp.sqrt(1 + jnp.sum(A * A, 1)), jnp.sqrt(1 + jnp.sum(B * B, 1))
        return (2 / jnp.pi) * jnp.arcsin((A @ B.T) / (na[:, None] * nb[None, :]))

    V, b = jnp.asarray(teacher_W1), jnp.asarray(teacher_W2).ravel()
    return 0.5 * (a @ K(W, W) @ a - 2 * a @ K(W, V) @ b + b @ K(V, V) @ b)


def _check_endpoints_independently(out: Path, recs: list[dict], capsys):
    """Every stored end point, re-read from OUT/endpoints/<run_id>.npz: (1) `lossatlas classify`
    with the record's global minimum value gives the record's label (one policy for find, classify
    and the atlas); (2) its gradient and Hessian from a hand-written population loss agree with
    the record: ||∇L||∞ within the record's criticality threshold, the loss, and the index."""
    import jax

    from lossatlas.data import load_network

    teacher = load_network(out / "teacher.npz")
    d = int(teacher.widths[0])
    for r in recs:
        net_file = out / "endpoints" / f"{r['run_id']}.npz"
        args = ["classify", "--model", str(net_file), "--teacher", str(out / "teacher.npz"),
                "--population", "erf", "--json"]
        if r["global_min_value"] is not None:
            args += ["--global-min-value", repr(r["global_min_value"])]
        assert main(args) == 0
        doc = json.loads(capsys.readouterr()[0])
        assert doc["label"] == r["label"], (r["run_id"], r["width"], doc["evidence"]["reason"], r["reason"])
        net = load_network(net_file)
        theta = np.concatenate([np.asarray(w).ravel() for w in net.weights])
        np.testing.assert_array_equal(theta, Store(out).arrays(r["run_id"])["theta"])
        L = lambda th: _erf_population_loss(th, teacher.weights[0], teacher.weights[1], d)  # noqa: E731
        g = np.asarray(jax.grad(L)(theta))
        H = np.asarray(jax.jit(jax.hessian(L))(theta))
        assert abs(float(L(theta)) - r["loss"]) <= 1e-14 * max(1.0, abs(r["loss"])) + 1e-15
        if r["label"] != "not_critical":
            assert np.max(np.abs(g)) <= r["grad_tol"], (r["run_id"], np.max(np.abs(g)), r["grad_tol"])
            lam = np.linalg.eigvalsh(0.5 * (H + H.T))
            tol = r["tolerance"]
            ambiguous = np.any((np.abs(lam) > tol / 10) & (np.abs(lam) < 10 * tol))
            if r["label"] != "global_minimum" and not ambiguous:  # a global minimum's index counts round-off
                assert int(np.sum(lam < -tol)) == r["index"], (r["run_id"], lam[:4], tol)


@pytest.mark.slow
def test_quick_spec_labels_agree_with_classify(tmp_path, capsys):
    """The label-agreement check on every run of examples/specs/quick.toml."""
    out = tmp_path / "quick"
    spec = Path(__file__).resolve().parents[1] / "examples" / "specs" / "quick.toml"
    assert main(["atlas", str(spec), "--out", str(out), "--no-report", "--json"]) == 0
    capsys.readouterr()
    _check_endpoints_independently(out, Store(out).records(), capsys)


def test_resume_after_kill_9(tmp_path):
    spec = _spec(tmp_path, seeds=3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lossatlas", "atlas", str(spec), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        if (out / "runs").is_dir() and len(list((out / "runs").glob("*.json"))) >= 2:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").glob("*.json")}
    assert 0 < len(before) < 9, "the kill should land mid-sweep"
    summary = run_sweep(load_spec(spec), out)
    assert summary.computed == 9 - len(before) and summary.skipped == len(before)
    _check_store(out, 9)
    for name, (mtime, content) in before.items():  # finished runs were not computed again
        p = out / "runs" / name
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == content


@pytest.mark.slow  # the default run keeps a faster case of the same check (issue 17: suite under 5 min)
def test_dask_executor_survives_a_killed_worker(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    spec = load_spec(_spec(tmp_path, seeds=2))
    out = tmp_path / "out"
    n_runs = sum(len(b) for b in plan(spec))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        import threading

        result = {}
        t = threading.Thread(target=lambda: result.update(
            s=run_sweep(spec, out, executor="dask", scheduler=cluster.scheduler_address)))
        t.start()
        deadline = time.time() + 240
        while time.time() < deadline:
            if (out / "runs").is_dir() and list((out / "runs").glob("*.json")):
                break
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)  # a worker dies mid-sweep
        t.join(timeout=600)
        assert not t.is_alive()
    assert result["s"].total == n_runs
    _check_store(out, n_runs)


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"teacher": {"width": 0}}, "teacher.width"),
        ({"teacher": {"activation": "swish"}}, "teacher.activation"),
        ({"student": {"widths": []}}, "student.widths"),
        ({"student": {"widths": [2, "x"]}}, "student.widths"),
        ({"run": {"seeds": -1}}, "run.seeds"),
        ({"run": {"t1": "long"}}, "run.t1"),
        ({"run": {"speed": 3}}, "run.speed"),
        ({"data": {"population": True}, "teacher": {"activation": "tanh"}}, "data.population"),
        ({"experiment": {"kind": "galaxy"}}, "experiment.kind"),
        ({"bogus": {}}, "bogus"),
        # every field is checked for its type, and names are checked against the student
        ({"teacher": {"activation": ["erf"]}}, "teacher.activation"),
        ({"teacher": {"activation": {"name": "erf"}}}, "teacher.activation"),
        ({"student": {"freeze": ["W9"]}}, "student.freeze"),
        ({"student": {"freeze": ["W1", "W2"]}}, "student.freeze"),
        ({"student": {"init_scale": "big"}}, "student.init_scale"),
        ({"experiment": {"kind": ["census"]}}, "experiment.kind"),
        ({"experiment": {"kind": "deep_linear"}, "student": {"widths": [[3, 3]], "freeze": ["W4"]}},
         "student.freeze"),
        ({"experiment": {"kind": "census"}, "student": {"widths": [6], "freeze": ["W1"]}}, "student.freeze"),
        ({"data": {"n_samples": 1.5}}, "data.n_samples"),
    ],
)
def test_invalid_spec_names_the_field(tmp_path, capsys, doc, field):
    from lossatlas import InputError

    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        spec_from_dict(doc)


@pytest.mark.parametrize("text", ["[teacher]\nwidth = 0\n", "not toml [[[", "[run]\nseeds = 2.5\n",
                                  '[teacher]\nactivation = ["erf"]\n', '[student]\nfreeze = ["W9"]\n'])
def test_cli_invalid_spec(tmp_path, capsys, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    code = main(["atlas", str(p), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written before the spec is valid


def test_cli_missing_spec_and_bad_report_folder(tmp_path, capsys):
    assert main(["atlas", str(tmp_path / "nope.toml")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert main(["atlas", "--executor", "slurm", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr()[1]
    assert all(line.startswith("error: ") for line in err.strip().splitlines())


def test_default_spec_is_the_documented_one():
    from lossatlas.experiments import default_spec

    s = default_spec()
    assert s.teacher.width == 3 and s.teacher.activation == "erf"
    assert s.student.widths == (3, 4, 5, 6) and s.run.seeds == 20 and s.data.population
    assert np.all([len(b) <= s.run.batch_size for b in plan(s)])


@pytest.mark.slow
def test_census_kind_end_to_end(tmp_path, capsys):
    """A census spec through the atlas: pooled counts add up, Wilson intervals, census figures."""
    from lossatlas.census._stats import wilson_interval
    from lossatlas.report import CENSUS_FIGURES

    spec = tmp_path / "census.toml"
    spec.write_text('[experiment]\nkind = "census"\n[student]\nwidths = [3, [4, 3]]\n[run]\nseeds = 2\nstarts = 8\n')
    out = tmp_path / "out"
    code = main(["atlas", str(spec), "--out", str(out), "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(o)
    rows = {r["width"]: r for r in doc["summary"]}
    assert set(rows) == {"3x3", "4x3"}
    for r in rows.values():
        assert r["starts"] == 16 and r["unconverged"] >= 0
        sp = round(r["spurious_fraction"] * r["starts"])
        assert r["spurious_interval"] == pytest.approx(list(wilson_interval(sp, 16)))
    recs = _check_store(out, 4)
    for r in recs:
        orbits = json.loads(r["orbits_json"])
        assert sum(o["count"] for o in orbits) + r["unconverged"] == r["starts"]
    for name in CENSUS_FIGURES:
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_l2_width_kind_end_to_end(tmp_path, capsys):
    """An L2 width-plateau spec: every run stored, best loss per width, the bound N(N+1)."""
    spec = tmp_path / "l2.toml"
    spec.write_text('[experiment]\nkind = "l2_width"\n[teacher]\nactivation = "relu"\nwidth = 2\ninput_dim = 2\n'
                    '[student]\nwidths = [1, 4]\n[data]\npopulation = false\nn_samples = 3\n'
                    '[run]\nseeds = 2\nsteps = 200\nlam = 0.01\n')
    out = tmp_path / "out"
    code = main(["atlas", str(spec), "--out", str(out), "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(o)["summary"]
    assert [r["width"] for r in rows] == [1, 4] and all(r["bound"] == 12 for r in rows)
    recs = _check_store(out, 4)
    for r in rows:  # the summary's best loss is the minimum over the stored runs
        assert r["best_loss"] == min(x["loss"] for x in recs if x["width_int"] == r["width"])
    assert (out / "figures" / "l2_width_plateau.png").read_bytes()[:4] == b"\x89PNG"


def test_l2_width_spec_refuses_population():
    from lossatlas import InputError

    with pytest.raises(InputError, match="data.population"):
        spec_from_dict({"experiment": {"kind": "l2_width"}, "data": {"population": True}})


def test_recovery_kind_end_to_end(tmp_path, capsys):
    """A recovery spec: every branch x sample size stored; thresholds within m(d+1); no recovery
    from fewer samples than any threshold (the interpolating set around the branch is larger)."""
    from lossatlas.recovery import enumerate_branches

    spec = tmp_path / "rec.toml"
    spec.write_text('[experiment]\nkind = "recovery"\n[teacher]\nactivation = "tanh"\nwidth = 1\ninput_dim = 2\n'
                    '[student]\nwidths = [2]\n[data]\npopulation = false\nsample_sizes = [2, 8]\n'
                    '[run]\nseeds = 1\nstarts = 3\n')
    out = tmp_path / "out"
    code = main(["atlas", str(spec), "--out", str(out), "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(o)["summary"]
    branches = enumerate_branches(2, 1, 2, "tanh")
    assert len(rows) == 2 * len(branches)
    _check_store(out, 2 * len(branches))
    for r in rows:
        assert r["threshold"] <= r["bound"] == 6
        if r["n"] < min(b.threshold for b in branches):
            assert r["probability"] == 0.0
    assert (out / "figures" / "recovery_probability.png").read_bytes()[:4] == b"\x89PNG"
