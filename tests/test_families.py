"""Several teachers in one spec, and the family catalogue of a teacher-student sweep.

Kinds of truth used here:
- the spec: a several-teacher spec expands into the runs of the single-teacher specs of its
  teachers (same run ids), round-trips through ``spec.json``, and every bad variant is refused
  naming its field (library: InputError; command: exit 2, one ``error:`` line, nothing written);
- the catalogue against brute force: random hand-made records are counted again here by plain
  loops over the records (per teacher, family, width; distinct subspace keys per (teacher, m, r));
- the counts columns against :func:`lossatlas.symmetry.count_G` / ``count_T`` / ``count_T_zero_loss``;
- the tables on disk: ``finish_sweep`` on a store of hand-made records writes ``families.parquet``
  and ``symmetry.parquet`` with the brute-force numbers, and the report draws one families figure
  per teacher (no sweep is computed in the default run);
- end to end (slow): a tiny sweep of two teachers, two widths, two seeds; every critical run is in
  exactly one family, and the command prints one families table per teacher.
"""

from __future__ import annotations

import collections
import html
import json
import random
import re
import shutil
import subprocess
import tomllib

import pandas as pd
import pytest

from lossatlas import InputError
from lossatlas.cli import main
from lossatlas.experiments import Store, finish_sweep, get_kind, load_spec, spec_from_dict, spec_from_record
from lossatlas.symmetry import count_G, count_T, count_T_zero_loss

MULTI = """
[experiment]
name = "multi"
[student]
widths_relative = [-1, 0, 1]
[teacher]
activation = "erf"
input_dim = 3
[[teachers]]
width = 2
[[teachers]]
label = "wide-one"
width = 3
seed = 4
widths = [3, 5]
[[teachers]]
label = "sp"
activation = "softplus"
width = 2
data = { population = false, n_samples = 50, seed = 3 }
seeds = 2
[run]
seeds = 3
"""


def _doc(text=MULTI):
    return tomllib.loads(text)


# ----------------------------------------------------------------------------- the spec
def test_several_teachers_expand_into_single_teacher_runs():
    spec = spec_from_dict(_doc())
    kind = get_kind(spec.kind)
    subs = spec.teacher_specs()
    assert [label for label, _ in subs] == ["erf-r2", "wide-one", "sp"]
    assert [sub.student.widths for _, sub in subs] == [(1, 2, 3), (3, 5), (1, 2, 3)]
    assert subs[1][1].teacher.seed == 4 and subs[1][1].teacher.input_dim == 3  # defaults from [teacher]
    assert subs[2][1].data.population is False and subs[2][1].data.n_samples == 50
    assert [sub.run.seeds for _, sub in subs] == [3, 3, 2]  # the softplus teacher's own seeds
    runs = kind.runs(spec)
    assert len(runs) == (3 + 2) * 3 + 3 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.teacher for r in runs} == {"erf-r2", "wide-one", "sp"}
    # each teacher's runs are the runs of its own single-teacher spec: same ids
    for i, (label, sub) in enumerate(subs):
        single = spec_from_dict({"teacher": {**sub.to_dict()["teacher"]}, "data": sub.to_dict()["data"],
                                 "student": {"widths": list(sub.student.widths)}, "run": {"seeds": sub.run.seeds}})
        assert not single.teachers
        mine = [r for r in runs if r.teacher_index == i]
        assert [r.run_id for r in mine] == [r.run_id for r in kind.runs(single)]
        assert {r.teacher for r in mine} == {label}
    # groups (batched flows share one landscape) never mix teachers
    groups = collections.defaultdict(set)
    for r in runs:
        groups[r.group].add(r.teacher)
    assert all(len(v) == 1 for v in groups.values())
    # spec.json round trip
    again = spec_from_record(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.to_dict() == spec.to_dict()


def test_single_teacher_spec_dict_is_unchanged_and_relative_widths_resolve():
    old = spec_from_dict({"teacher": {"width": 3}, "student": {"widths": [2, 3, 4]}})
    d = old.to_dict()
    assert "teachers" not in d and "widths_relative" not in d["student"] and d["student"]["widths"] == [2, 3, 4]
    rel = spec_from_dict({"teacher": {"width": 3}, "student": {"widths_relative": [-1, 0, 1]}})
    assert rel.student.widths == (2, 3, 4)
    assert [r.run_id for r in get_kind("teacher_student").runs(rel)] == \
        [r.run_id for r in get_kind("teacher_student").runs(old)]
    assert spec_from_record(rel.to_dict()) == rel


def test_the_certified_specs_parse():
    full = load_spec("examples/specs/certified_atlas.toml")
    small = load_spec("examples/specs/certified_atlas_small.toml")
    for spec, seeds, n_teachers in ((full, 1000, 3), (small, 100, 4)):
        assert spec.run.seeds == seeds and len(spec.teachers) == n_teachers
        for label, sub in spec.teacher_specs():
            r = sub.teacher.width
            assert sub.student.widths == tuple(range(r - 1, r + 4)), label
    erf = [sub for _, sub in small.teacher_specs() if sub.teacher.activation == "erf"]
    assert [s.teacher.width for s in erf] == [2, 3, 4] and all(s.data.population and s.teacher.input_dim == 4
                                                               for s in erf)
    sp = [sub for _, sub in small.teacher_specs() if sub.teacher.activation == "softplus"]
    assert len(sp) == 1 and not sp[0].data.population and sp[0].data.n_samples == 2000
    assert sp[0].run.seeds == 10  # a softplus run costs ~15 erf runs: the spec stays within the hour
    assert len(get_kind("teacher_student").runs(small)) == 3 * 5 * 100 + 5 * 10


BAD = [
    ('[[teachers]]\nwidth = 2\ncolour = "red"\n', "teachers[0].colour"),
    ('[[teachers]]\nwidth = 0\n', "teachers[0].width"),
    ('[[teachers]]\nactivation = "swish"\n', "teachers[0].activation"),
    ('[[teachers]]\nwidth = 2\nlabel = "a"\n[[teachers]]\nwidth = 3\nlabel = "a"\n', "teachers[1].label"),
    ('[[teachers]]\nwidth = 2\nlabel = "a/b"\n', "teachers[0].label"),
    ('[[teachers]]\nwidth = 2\n[[teachers]]\nwidth = 2\nlabel = "twin"\n', "teachers[1]"),
    ('[[teachers]]\nwidth = 2\n[[teachers]]\nwidth = 2\n', "teachers[1].label"),  # default labels clash
    ('[student]\nwidths_relative = [-2, 0]\n[[teachers]]\nwidth = 2\n', "student.widths_relative"),
    ('[student]\nwidths_relative = [0, 1]\nwidths = [2]\n', "student.widths_relative"),
    ('[student]\nwidths_relative = [0, "one"]\n', "student.widths_relative"),
    ('[student]\nwidths_relative = [1, 1]\n', "student.widths_relative"),
    ('[[teachers]]\nwidth = 2\nwidths = [2]\nwidths_relative = [0]\n', "teachers[0].widths_relative"),
    ('[[teachers]]\nwidth = 2\nwidths = [0]\n', "teachers[0].widths"),
    ('[[teachers]]\nwidth = 2\nseeds = 0\n', "teachers[0].seeds"),
    ('[[teachers]]\nwidth = 2\nactivation = "softplus"\n', "teachers[0].data.population"),
    ('[[teachers]]\nwidth = 2\ndata = { population = false, n_samples = -5 }\n', "teachers[0].data.n_samples"),
    ('[[teachers]]\nwidth = 2\ndata = { size = 5 }\n', "teachers[0].data.size"),
    ('[[teachers]]\nwidth = 2\ndata = 7\n', "teachers[0].data"),
    ("teachers = 3\n", "teachers"),
    ("teachers = []\n", "teachers"),
    ('[experiment]\nkind = "census"\n[student]\nwidths = [4]\n[[teachers]]\nwidth = 2\n', "teachers"),
    ('[experiment]\nkind = "census"\n[student]\nwidths_relative = [0]\n', "student.widths_relative"),
]


@pytest.mark.parametrize("text, field", BAD)
def test_bad_several_teacher_specs_name_the_field(text, field):
    with pytest.raises(InputError, match="spec field " + field.replace(".", r"\.").replace("[", r"\[")
                       .replace("]", r"\]")):
        spec_from_dict(tomllib.loads(text))


@pytest.mark.parametrize("text", [t for t, _ in BAD[::3]])
def test_cli_refuses_bad_several_teacher_specs(tmp_path, capsys, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    code = main(["atlas", str(p), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: spec field ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- the catalogue
#: Hand-made families per teacher index: (key, width r, loss, index, label).
FAMS = {0: [("A-g", 2, 0.0, 0, "global_minimum"), ("A-s1", 1, 0.3, 1, "strict_saddle"),
            ("A-m1", 1, 0.2, 0, "minimum")],
        1: [("B-g", 3, 0.0, 0, "global_minimum"), ("B-s2", 2, 0.1, 2, "strict_saddle"),
            ("B-s1", 1, 0.5, 1, "strict_saddle"), ("B-i", 4, 0.05, 1, "strict_saddle")]}


def _record(rng, run_id, t_index, label, r_star, m, seed):
    """One random hand-made record of a run of width m: failed, not critical, or in a family."""
    rec = {"run_id": run_id, "run_status": "ok", "kind": "teacher_student", "teacher": label,
           "teacher_index": t_index, "width": str(m), "seed": seed, "r_star": r_star}
    u = rng.random()
    if u < 0.05:
        rec.update(run_status="error", error="ValueError: boom")
        del rec["r_star"]
    elif u < 0.15:
        rec.update(label="not_critical", explanation=None, family_key=None, family_width=None,
                   reduced_width=rng.randint(1, m), subspace_key=f"k{rng.randint(0, 3)}")
    else:
        key, r, loss, idx, lab = rng.choice([f for f in FAMS[t_index] if f[1] <= m])
        expl = ("global_minimum" if lab == "global_minimum" else "irreducible" if r == m
                else rng.choice(["reducible", "reducible", "unexplained"]))
        rec.update(label=lab, explanation=expl, family_key=key, family_width=r,
                   family_loss=loss + rng.uniform(-1e-17, 1e-17), family_index=idx, family_nullity=0,
                   family_label=lab, family_kind="reducible" if r < m else "irreducible",
                   reduced_width=r, subspace_key=f"{key}:{rng.randint(0, 5)}")
    return rec


def _records(seed=0, n=400):
    """Random hand-made run records of two teachers: families, explanations, failures."""
    rng = random.Random(seed)
    teachers = {(0, "A"): (2, [1, 2, 3, 4]), (1, "B"): (3, [2, 3, 4, 5, 6])}
    recs = []
    for k in range(n):
        t = rng.choice(sorted(teachers))
        recs.append(_record(rng, f"{k:016x}", t[0], t[1], teachers[t][0], rng.choice(teachers[t][1]), k))
    return recs, teachers


def test_family_rows_against_brute_force():
    from lossatlas.experiments._families import family_rows

    recs, teachers = _records()
    widths = {t: ms for t, (_, ms) in teachers.items()}
    rows = family_rows(recs, widths)
    ok = [r for r in recs if r["run_status"] == "ok"]
    explained = [r for r in ok if r.get("explanation") is not None]
    # every explained end point is in exactly one family: the sum over families is the count
    assert sum(f["runs"] for f in rows) == len(explained)
    for t, (_, ms) in teachers.items():
        mine = [f for f in rows if (f["teacher_index"], f["teacher"]) == t]
        keys = {r["family_key"] for r in explained if r["teacher"] == t[1]}
        assert sorted(f["family_key"] for f in mine) == sorted(keys)
        assert [f["family"] for f in mine] == [f"F{i}" for i in range(1, len(mine) + 1)]
        assert [(f["family_width"], f["family_loss"]) for f in mine] == \
            sorted((f["family_width"], f["family_loss"]) for f in mine)
        for m in ms:
            total = sum(1 for r in ok if r["teacher"] == t[1] and r["width"] == str(m))
            assert sum(f["runs_by_width"][m] for f in mine) == sum(
                1 for r in explained if r["teacher"] == t[1] and r["width"] == str(m))
            for f in mine:
                n = sum(1 for r in explained if r["teacher"] == t[1] and r["width"] == str(m)
                        and r["family_key"] == f["family_key"])
                assert f["runs_by_width"][m] == n
                assert f["fraction_by_width"][m] == pytest.approx(n / total)
        for f in mine:
            own = [r for r in explained if r["teacher"] == t[1] and r["family_key"] == f["family_key"]]
            assert f["runs"] == len(own)
            assert set(f["explanations"].split(",")) == {r["explanation"] for r in own}
            assert f["family_index"] == own[0]["family_index"] and f["family_label"] == own[0]["family_label"]
            assert f["consistent"] and abs(f["family_loss"] - own[0]["family_loss"]) <= 2e-17
            assert f["r_star"] == teachers[t][0]


def test_width_counts_split_every_finished_run():
    from lossatlas.experiments._families import family_rows, width_counts

    recs, teachers = _records(seed=3)
    # a critical end point without an explanation (e.g. it reduces to width 0): in no family
    recs.append({"run_id": "f" * 16, "run_status": "ok", "teacher": "A", "teacher_index": 0, "width": "2",
                 "seed": 999, "r_star": 2, "label": "degenerate_minimum", "explanation": None, "family_key": None})
    rows = width_counts(recs)
    fams = family_rows(recs)
    for c in rows:
        mine = [r for r in recs if r["run_status"] == "ok" and r["teacher"] == c["teacher"]
                and r["width"] == str(c["m"])]
        assert c["runs"] == len(mine)
        assert c["not_critical"] == sum(r["label"] == "not_critical" for r in mine)
        assert c["critical_unexplained"] == sum(r["label"] != "not_critical" and r["explanation"] is None
                                                for r in mine)
        assert c["runs"] == c["explained"] + c["not_critical"] + c["critical_unexplained"]
        assert c["explained"] == sum(f["runs_by_width"].get(c["m"], 0) for f in fams if f["teacher"] == c["teacher"])
    assert sum(c["critical_unexplained"] for c in rows) == 1


def test_symmetry_rows_against_brute_force_and_the_counts():
    from lossatlas.experiments._families import symmetry_rows

    recs, teachers = _records(seed=1)
    rows = symmetry_rows(recs, {t: v for t, v in teachers.items()})
    explained = [r for r in recs if r["run_status"] == "ok" and r.get("explanation") is not None]
    want = collections.defaultdict(list)
    for r in explained:
        want[(r["teacher"], int(r["width"]), r["family_width"])].append(r)
    assert sorted((x["teacher"], x["m"], x["r"]) for x in rows) == sorted(want)
    for x in rows:
        grp = want[(x["teacher"], x["m"], x["r"])]
        assert x["runs"] == len(grp)
        assert x["global_runs"] == sum(r["explanation"] == "global_minimum" for r in grp)
        assert x["families"] == len({r["family_key"] for r in grp})
        assert x["subspaces"] == len({r["subspace_key"] for r in grp})
        assert x["global_subspaces"] == len({r["subspace_key"] for r in grp if r["explanation"] == "global_minimum"})
        rs = teachers[(x["teacher_index"], x["teacher"])][0]
        assert x["r_star"] == rs
        assert x["G"] == count_G(x["r"], x["m"])
        assert x["T"] == (count_T(rs, x["m"]) if x["m"] >= rs else None)
        assert x["T_zero_loss"] == (count_T_zero_loss(rs, x["m"]) if x["m"] >= rs else None)


def test_records_from_before_explanations_count_by_their_reduction():
    from lossatlas.experiments._families import family_rows, symmetry_rows

    old = [{"run_id": str(i), "run_status": "ok", "width": "4", "r_star": 3, "label": lab, "reduced_width": r,
            "subspace_key": f"s{i % 2}"} for i, (lab, r) in enumerate([("global_minimum", 3), ("global_minimum", 3),
                                                                        ("strict_saddle", 2), ("not_critical", 4)])]
    assert family_rows(old) == []
    rows = symmetry_rows(old)
    assert [(x["m"], x["r"], x["runs"], x["global_runs"], x["subspaces"]) for x in rows] == [(4, 2, 1, 0, 1),
                                                                                              (4, 3, 2, 2, 2)]
    assert rows[1]["T"] == count_T(3, 4) and rows[0]["G"] == count_G(2, 4)


TWO = """
[experiment]
name = "two"
[teacher]
activation = "erf"
input_dim = 3
[student]
widths_relative = [-1, 0, 1]
[[teachers]]
width = 2
[[teachers]]
label = "wide-one"
width = 3
widths = [3, 5]
[run]
seeds = 40
[report]
path = false
slices = false
"""


def _hand_made_store(tmp_path):
    """A sweep folder of the two-teacher spec `TWO` whose records are hand-made (no run computed):
    its spec.json, and one random record per run id of the spec."""
    spec = spec_from_dict(tomllib.loads(TWO))
    store = Store(tmp_path / "out", create=True)
    (store.root / "spec.json").write_text(json.dumps({"format": "lossatlas-sweep/1", "spec": spec.to_dict()}))
    rng = random.Random(2)
    written = []
    for run in get_kind(spec.kind).runs(spec):
        rec = _record(rng, run.run_id, run.teacher_index, run.teacher, run.spec.teacher.width, run.width, run.seed)
        if rec["run_status"] == "ok":
            rec.update(loss=0.1, grad_norm_inf=1e-13, is_global=rec.get("label") == "global_minimum", wall_time=0.1,
                       index=0, nullity=0, polish_method="saddle_newton", converged=True)
        store.write(run.run_id, rec, {})
        written.append(rec)
    return spec, store, written


def test_finish_sweep_writes_the_tables_and_the_report_draws_a_figure_per_teacher(tmp_path):
    from lossatlas.experiments._families import family_rows, symmetry_rows
    from lossatlas.report import build_report

    spec, store, written = _hand_made_store(tmp_path)
    store.gather()
    done = finish_sweep(spec, store)
    extras = done["extras"]
    assert {"teacher:erf-r2", "teacher:wide-one"} <= set(done["exports"])
    fam = pd.read_parquet(store.root / "families.parquet")
    sym = pd.read_parquet(store.root / "symmetry.parquet")
    want = family_rows(written, {(i, label): list(sub.student.widths)
                                 for i, (label, sub) in enumerate(spec.teacher_specs())})
    assert len(fam) == len(want) == len(extras["families"])
    explained = [r for r in written if r["run_status"] == "ok" and r.get("explanation") is not None]
    for label, sub in spec.teacher_specs():
        mine = fam[fam["teacher"] == label]
        for m in sub.student.widths:  # per width, the families' counts add up to the explained runs
            assert int(mine[f"m{m}"].sum()) == sum(1 for r in explained if r["teacher"] == label
                                                   and r["width"] == str(m))
        other = [m for m in ("1", "2", "3", "4", "5") if int(m) not in sub.student.widths and f"m{m}" in fam]
        assert all(mine[f"m{m}"].isna().all() for m in other)  # widths the teacher has no runs of: null
    assert int(fam["runs"].sum()) == len(explained)
    assert sym[["teacher", "m", "r", "runs", "subspaces"]].to_dict("records") == [
        {k: x[k] for k in ("teacher", "m", "r", "runs", "subspaces")} for x in symmetry_rows(written)]
    assert all(int(g) == count_G(int(r), int(m)) for g, r, m in zip(sym["G"], sym["r"], sym["m"], strict=True))
    # the command's tables: one families table and one symmetry table per teacher
    kind = get_kind(spec.kind)
    titles = [t.title for t in kind.extra_tables(spec, extras)]
    assert sum("families" in t for t in titles) == 2 and sum("subspaces" in t for t in titles) == 2
    assert titles[0].startswith("erf-r2: ") and any(t.startswith("wide-one: ") for t in titles)
    rep = build_report(store.root)
    assert {"families_erf-r2", "families_wide-one"} <= set(rep.figures)
    assert "families" not in rep.figures
    assert not {"families_erf-r2", "families_wide-one", "symmetry"} & set(rep.empty_figures)
    page = rep.html.read_text()
    assert "id='fig-families_erf-r2'" in page
    data = json.loads(re.search(r"<script type='application/json' id='lossatlas-data'>(.*?)</script>", page,
                                re.S).group(1).replace("<\\/", "</"))
    assert {"teacher", "explanation", "family_width"} <= {c["key"] for c in data["columns"]}


def _chromium():
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_report_of_two_teachers_in_headless_chromium(tmp_path):
    """The page's self-test drives the teacher filter: each teacher shows exactly its runs."""
    from lossatlas.report import build_report

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium (apt-get install chromium-headless-shell)")
    spec, store, written = _hand_made_store(tmp_path)
    store.gather()
    rep = build_report(store.root)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=10000", "--dump-dom",
           rep.html.resolve().as_uri() + "#selftest"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    m = re.search(r'<pre id="selftest-result"[^>]*data-done="1"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stdout[-2000:]
    got = json.loads(html.unescape(m.group(1)))
    assert got["errors"] == []
    want = collections.Counter(r["teacher"] for r in written)
    assert got["teacher_counts"] == dict(want)
    with_loss = collections.Counter(r["teacher"] for r in written if r["run_status"] == "ok")
    assert got["overview_categories"] == dict(with_loss)
    assert got["rows_after_reset"] == len(written)


# ----------------------------------------------------------------------------- end to end
TINY_MULTI = """
[experiment]
name = "tiny-multi"
[student]
widths_relative = [0, 1]
[teacher]
activation = "erf"
input_dim = 2
[[teachers]]
width = 1
[[teachers]]
width = 2
[run]
seeds = 2
t1 = 1e3
[report]
slice_points = 5
"""


@pytest.mark.slow
def test_tiny_two_teacher_sweep_end_to_end(tmp_path, capsys):
    spec = tmp_path / "multi.toml"
    spec.write_text(TINY_MULTI)
    out = tmp_path / "out"
    assert main(["atlas", str(spec), "--out", str(out)]) == 0
    text = capsys.readouterr()[0]
    assert "erf-r1: families of the end points" in text and "erf-r2: families of the end points" in text
    assert main(["atlas", str(spec), "--out", str(out), "--json"]) == 0  # resumed: nothing computed
    doc = json.loads(capsys.readouterr()[0])
    assert doc["sweep"]["computed"] == 0 and doc["sweep"]["skipped"] == 8
    recs = Store(out).records()
    assert len(recs) == 8 and all(r["run_status"] == "ok" for r in recs)
    crit = [r for r in recs if r["label"] != "not_critical"]
    fam = pd.read_parquet(out / "families.parquet")
    assert int(fam["runs"].sum()) == len(crit)  # every critical run is in exactly one family
    for label, widths in (("erf-r1", (1, 2)), ("erf-r2", (2, 3))):
        mine = fam[fam["teacher"] == label]
        for m in widths:
            assert int(mine[f"m{m}"].sum()) == sum(1 for r in crit if r["teacher"] == label and r["width"] == str(m))
    for r in crit:
        assert r["explanation"] in ("global_minimum", "reducible", "irreducible", "unexplained")
        assert r["family_key"] and r["family_width"] <= int(r["width"])
        assert Store(out).arrays(r["run_id"])["family_theta"].dtype == "float64"
        if r["label"] == "global_minimum":
            assert r["explanation"] == "global_minimum" and r["family_width"] == r["r_star"]
    # one family per teacher's global minimum; its key is shared by every width
    for label in ("erf-r1", "erf-r2"):
        keys = {r["family_key"] for r in crit if r["teacher"] == label and r["label"] == "global_minimum"}
        assert len(keys) <= 1
    assert {f["family_key"] for f in doc["families"]} == set(fam["family_key"])
    for label in ("erf-r1", "erf-r2"):
        assert (out / "figures" / f"families_{label}.png").is_file() and (out / "teachers" / f"{label}.npz").is_file()


def test_records_of_an_older_run_format_are_moved_aside(tmp_path):
    """The run format is hashed into run ids (teacher_student records with explanations are
    ``lossatlas-run/3``): a folder's records of an older format are no runs of its spec; a sweep
    moves them into quarantine/ instead of counting them twice."""
    from lossatlas.experiments import run_sweep

    spec, store, written = _hand_made_store(tmp_path)
    old = {**written[0], "run_id": "0123456789abcdef"}
    store.write(old["run_id"], old, {})
    summary = run_sweep(spec, store.root)
    assert summary.total == summary.skipped == len(written) and summary.computed == 0
    assert summary.retired == ("0123456789abcdef",)
    assert not (store.runs / "0123456789abcdef.json").exists()
    assert (tmp_path / "out" / "quarantine").is_dir() and summary.quarantine_dir
    assert len(store.records()) == len(written)
