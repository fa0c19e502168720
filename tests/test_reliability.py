"""Issue 21: nothing silently lost, identical results on every executor, bad input refused.

Sweeps use a tiny spec (two runs); each check names the item of issue 21 it guards. CLI checks
expect exit code 2 with one `error:` line on stderr and nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from lossatlas.cli import main
from lossatlas.data import save_data, save_network, teacher_student
from lossatlas.experiments import Store
from lossatlas.models import init_mlp

REPO = Path(__file__).resolve().parent.parent

TINY = """
[experiment]
name = "tiny"
[teacher]
activation = "erf"
width = 2
input_dim = 2
[student]
widths = [2]
[run]
seeds = 2
t1 = 1e3
[report]
slice_points = 5
path = false
"""

#: Columns that measure time: they differ between any two computations of a run.
TIMING = ("wall_time", "flow_time")


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args, what: str = "") -> str:
    """Exit code 2, one `error:` line on stderr (no traceback, no progress bar); its text."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert what in lines[0], lines[0]
    return lines[0]


def table(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out / "results.parquet")
    return df.drop(columns=[c for c in TIMING if c in df.columns])


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame):
    """Bit for bit: same columns, same values (NaN equal to NaN), same dtypes."""
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    p = tmp_path_factory.mktemp("spec") / "tiny.toml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def done(spec, tmp_path_factory):
    """A finished tiny sweep (--workers 1); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    code = main(["atlas", str(spec), "--out", str(out), "--no-report", "--json"])
    assert code == 0
    return out


def copy(done: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(done, out)
    return out


# ---------------------------------------------------------------- 1. validity and quarantine


def test_store_check_scan_and_quarantine(tmp_path):
    store = Store(tmp_path / "s", create=True)
    for i in range(5):
        store.write(f"r{i}", {"run_id": f"r{i}", "run_status": "ok"}, {"theta": np.arange(3.0) + i})
    (store.runs / "r0.json").write_text((store.runs / "r0.json").read_text()[:20])  # truncated record
    with open(store.runs / "r1.npz", "r+b") as f:  # truncated arrays
        f.truncate(100)
    (store.runs / "r2.npz").unlink()  # arrays deleted
    rec = json.loads((store.runs / "r3.json").read_text())
    rec["array_names"].append("eigenvalues")  # an array the record lists is missing
    (store.runs / "r3.json").write_text(json.dumps(rec))
    valid, invalid = store.scan()
    assert valid == {"r4"}
    assert set(invalid) == {"r0", "r1", "r2", "r3"}
    assert "unreadable" in invalid["r0"] and "unreadable" in invalid["r1"]
    assert "missing" in invalid["r2"] and "eigenvalues" in invalid["r3"]
    assert store.has("r4") and not store.has("r1")
    q = store.quarantine(invalid)
    assert q.parent == store.root / "quarantine"
    assert json.loads((q / "reasons.json").read_text()) == invalid
    assert {p.name for p in q.iterdir()} >= {"r0.json", "r1.json", "r1.npz", "r3.npz"}
    assert store.done_ids() == {"r4"}
    assert [r["run_id"] for r in store.records()] == ["r4"]
    assert "array_names" not in store.records()[0]


def test_invalid_records_are_quarantined_and_recomputed(done, spec, tmp_path, capsys):
    out = copy(done, tmp_path)
    before = table(done)
    ids = sorted(p.stem for p in (out / "runs").glob("*.json"))
    p = out / "runs" / f"{ids[0]}.json"
    p.write_text(p.read_text()[: len(p.read_text()) // 2])  # truncated record
    (out / "runs" / f"{ids[1]}.npz").unlink()  # deleted arrays
    code, o, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--json")
    assert code == 0, err
    sweep = json.loads(o)["sweep"]
    assert sweep["computed"] == 2 and sweep["skipped"] == 0 and sorted(sweep["quarantined"]) == ids
    q = Path(sweep["quarantine_dir"])
    assert q.parent == out / "quarantine" and (q / f"{ids[0]}.json").is_file()
    assert_same_rows(table(out), before)  # the recomputed runs are bit-identical


# ---------------------------------------------------------------- 2. lock


def test_second_sweep_on_a_locked_folder_is_refused(done, spec, tmp_path, capsys):
    out = copy(done, tmp_path)
    mtime = (out / "results.parquet").stat().st_mtime_ns
    with Store(out).lock():
        msg = refused(capsys, "atlas", spec, "--out", out, "--no-report", what="in use by another sweep")
        assert f"pid {os.getpid()}" in msg
    assert (out / "results.parquet").stat().st_mtime_ns == mtime
    # the lock file stays behind (as after a kill -9): it does not block the next sweep
    code, o, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--json")
    assert code == 0, err
    assert json.loads(o)["sweep"]["skipped"] == 2


# ---------------------------------------------------------------- 4. failed runs


def test_retry_failed(done, spec, tmp_path, capsys):
    out = copy(done, tmp_path)
    before = table(done)
    store = Store(out)
    rid = sorted(store.done_ids())[0]
    store.write(rid, {"run_id": rid, "run_status": "error", "width": "2", "seed": 0,
                      "error": "LinAlgError: SVD did not converge"}, {})
    code, o, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--json")
    assert code == 0, err
    sweep = json.loads(o)["sweep"]
    assert (sweep["computed"], sweep["failed"], sweep["failed_before"], sweep["retried"]) == (0, 1, 1, 0)
    code, o, err = run(capsys, "atlas", spec, "--out", out, "--no-report")
    assert code == 0 and "1 run(s) had failed earlier" in o and "--retry-failed" in o
    code, o, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--retry-failed", "--json")
    assert code == 0, err
    sweep = json.loads(o)["sweep"]
    assert (sweep["computed"], sweep["failed"], sweep["failed_before"], sweep["retried"]) == (1, 0, 1, 1)
    assert_same_rows(table(out), before)


# ---------------------------------------------------------------- 5. figure temporaries


def test_rerun_and_report_remove_interrupted_figure_writes(done, spec, tmp_path, capsys):
    out = copy(done, tmp_path)
    figs = out / "figures"
    figs.mkdir()
    stray = figs / ".global_fraction.png.k3j2h1.tmp.png"
    stray.write_bytes(b"partial")
    code, _, err = run(capsys, "atlas", spec, "--out", out, "--no-report")
    assert code == 0, err
    assert not stray.exists()
    stray.write_bytes(b"partial")
    code, _, err = run(capsys, "report", out)
    assert code == 0, err
    assert not list(out.rglob(".*.tmp*"))
    assert (figs / "global_fraction.png").is_file()


# ---------------------------------------------------------------- 3. executors


def test_workers_1_and_2_give_identical_rows(done, spec, tmp_path, capsys):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    out = tmp_path / "w2"
    code, _, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--workers", 2)
    assert code == 0, err
    assert_same_rows(table(out), table(done))


@pytest.mark.slow  # a dask LocalCluster takes tens of seconds to start
def test_dask_gives_the_rows_of_the_local_executor(done, spec, tmp_path, capsys):
    """The third execution path: a dask LocalCluster of two workers computes every run of the
    sweep; its rows equal those of `--workers 1`, bit for bit."""
    pytest.importorskip("dask.distributed")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    out = tmp_path / "dask"
    code, _, err = run(capsys, "atlas", spec, "--out", out, "--no-report", "--executor", "dask", "--workers", 2)
    assert code == 0, err
    assert_same_rows(table(out), table(done))


def test_every_task_pins_the_thread_settings(monkeypatch):
    from lossatlas.experiments import _sweep

    jax.numpy.zeros(1).block_until_ready()  # this process's XLA backend runs
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with pytest.raises(RuntimeError, match="XLA_FLAGS"):  # this process's JAX already runs
        _sweep._pin_threads()
    monkeypatch.setenv("XLA_FLAGS", _sweep._WORKER_ENV["XLA_FLAGS"])
    _sweep._pin_threads()
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")  # the user's flags are kept, extended
    assert _sweep._worker_env()["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + _sweep._WORKER_ENV["XLA_FLAGS"]


# ---------------------------------------------------------------- 8. nothing written before validation


def test_atlas_writes_nothing_before_its_checks_pass(spec, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, "atlas", spec, "--out", out, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
            what="cannot reach the dask scheduler")
    assert not out.exists()
    refused(capsys, "atlas", spec, "--out", out, "--workers", (os.cpu_count() or 1) + 1, what="cores")
    assert not out.exists()


def test_atlas_different_sweep_names_it(done, tmp_path, capsys):
    out = copy(done, tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace('name = "tiny"', 'name = "other"'))
    refused(capsys, "atlas", other, "--out", out, what="holds a different sweep 'tiny'")


def test_report_on_empty_runs_writes_nothing(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    refused(capsys, "report", tmp_path, what="no finished runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


# ---------------------------------------------------------------- 6. unwritable outputs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    teacher = init_mlp(jax.random.PRNGKey(0), (2, 2, 1), "relu", bias=False, scale=1.0)
    save_network(d / "net.npz", teacher)
    save_data(d / "data.npz", teacher_student(jax.random.PRNGKey(1), teacher, 6))
    (d / "folder").mkdir()
    return d


def _out_commands(d: Path, out: Path):
    return {
        "analyze": ["analyze", "--example", "teacher-student", "--save-hessian", out],
        "embed": ["symmetry", "embed", "--model", d / "net.npz", "--width", 3, "--out", out],
        "connect": ["symmetry", "connect", "--model", d / "net.npz", "--data", d / "data.npz",
                    "--permutation", "1,0", "--out", out],
        "prune": ["l2", "prune", "--model", d / "net.npz", "--data", d / "data.npz", "--lam", 0.01,
                  "--out", out],
        "export-torch": ["export-torch", d / "net.npz", "--out", out],
        "import-torch": ["import-torch", d / "net.pt", "--out", out],
    }


@pytest.mark.parametrize("command", ["analyze", "embed", "connect", "prune", "export-torch", "import-torch"])
def test_output_path_that_is_a_folder_is_refused(files, command, capsys):
    if command.endswith("torch"):
        pytest.importorskip("torch")
    refused(capsys, *_out_commands(files, files / "folder")[command], what="it is a folder")


@pytest.mark.parametrize("command", ["analyze", "embed", "prune"])
def test_output_in_an_unwritable_folder_is_refused(files, command, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root writes anywhere: use a read-only file system
            if not Path("/proc/self").is_dir():
                pytest.skip("no read-only folder available")
            ro = Path("/proc")
        refused(capsys, *_out_commands(files, ro / "x.npz")[command], what="not writable")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_atlas_out_unwritable_is_refused(spec, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    refused(capsys, "atlas", spec, "--out", tmp_path / "file", what="not a folder")
    if Path("/proc/self").is_dir():
        refused(capsys, "atlas", spec, "--out", "/proc/lossatlas-out", what="cannot write")


# ---------------------------------------------------------------- 9. size limits


@pytest.mark.parametrize("args", [("--r", 3, "--m", 1_000_000), ("--r", 100_000, "--m", 100_000),
                                  ("--r", 3, "--m", 10_000), ("--widths", "2:1700,2:1700")])
def test_count_refuses_what_cannot_finish_in_seconds(args, capsys):
    refused(capsys, "count", *args, what="limit")


def test_count_prints_integers_of_any_size(capsys):
    widths = "2:1000,2:1000,2:1000"  # T_zero_loss: ~6000 digits (Python's default limit is 4300)
    code, out, err = run(capsys, "count", "--widths", widths, "--json")
    assert code == 0, err
    assert len(str(json.loads(out)["T_zero_loss"])) > 4300
    code, out, err = run(capsys, "count", "--widths", widths)
    assert code == 0 and "digits" in out, err


def test_embed_refuses_a_huge_width(files, tmp_path, capsys):
    refused(capsys, "symmetry", "embed", "--model", files / "net.npz", "--width", 1_000_000_000,
            "--out", tmp_path / "w.npz", what="limit")
    assert not (tmp_path / "w.npz").exists()


def test_local_workers_beyond_the_cores_are_refused(spec, tmp_path, capsys):
    refused(capsys, "atlas", spec, "--out", tmp_path / "o", "--workers", 100_000, what="cores")


def test_census_refuses_beyond_its_limit(capsys):
    refused(capsys, "census", "--k", 3, "--n", 3, "--starts", 2_147_483_647, what="limit")


@pytest.mark.slow  # the census itself is covered by tests/test_census.py in the default run
def test_census_draws_large_start_counts_block_by_block(monkeypatch):
    from lossatlas.census import _census, run_census

    monkeypatch.setattr(_census, "_DRAW_BLOCK", 16)  # 40 starts: blocks of 16, 16 and 8
    res = run_census(2, 2, starts=40, seed=3, batch_size=10)
    rec = res.to_record()
    assert rec["starts"] == 40
    assert rec["global_count"] + rec["spurious_count"] + rec["other_count"] + rec["unconverged"] == 40
    draw = _census._start_draws(3, 40, 4, 0.5)
    a = draw(slice(0, 40))
    assert np.array_equal(a[10:30], draw(slice(10, 30)))  # any slice, the same rows
    assert np.array_equal(a[16:32], 0.5 * np.asarray(jax.random.normal(
        jax.random.fold_in(jax.random.PRNGKey(3), 1), (16, 4), dtype=np.float64)))
    small = _census._start_draws(3, 10, 4, 0.5)(slice(0, 10))  # at most one block: as always
    assert np.array_equal(small, 0.5 * np.asarray(jax.random.normal(jax.random.PRNGKey(3), (10, 4),
                                                                    dtype=np.float64)))


# ---------------------------------------------------------------- 11, 12. the test suite itself


def test_readme_test_command_installs_torch():
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "python -m pytest" in ln)
    extras = line.split('.[', 1)[1].split("]", 1)[0].split(",")
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = [d for e in extras for d in deps[e]]
    assert "torch==2.13.0" in installed  # pinned: a plain `torch` may pull a CUDA build


def test_no_wall_clock_assertions_in_tests():
    for p in sorted((REPO / "tests").glob("test_*.py")):
        text = p.read_text()
        assert "assert elapsed" + " <" not in text, p.name
