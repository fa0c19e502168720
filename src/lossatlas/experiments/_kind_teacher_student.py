"""``kind = "teacher_student"``: students of several widths learning two-layer bias-free teachers
of minimal width r* (closed-form Gaussian population loss, or N teacher-labelled samples); every
critical end point is explained by the critical point of the narrowest network it comes from
(its family, :func:`lossatlas.pipeline.explain`), the families are catalogued per teacher
(``families.parquet``) and the affine subspaces visited are compared with the symmetry counts
T(r*, m) and G(r, m) of Şimşek et al. (2021) (``symmetry.parquet``); a zero-loss path joins two
permuted minima. A spec may list several teachers (``[[teachers]]``): everything is per teacher."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..data import atomic_path, save_network
from ..pipeline import explain
from ._checks import check_int, spec_error
from ._families import families_frame, family_rows, symmetry_frame, symmetry_rows, width_counts
from ._flowruns import FlowKind, record_json
from ._kind import Figure, Table
from ._plot import LABEL_COLORS, no_data, pyplot, save
from ._spec import RunSpec, SweepSpec, TeacherSpec
from ._store import write_json_atomic

#: Relative tolerance for merging neurons of an end point. On a degenerate (non-Morse-Bott)
#: zero-loss branch, copies of one teacher neuron approach each other only as fast as the loss
#: allows: a loss of 1e-16 leaves them ~1e-4 apart (the function differs at second order).
REDUCTION_TOL = 1e-3

#: Fields of :meth:`lossatlas.pipeline.Explanation.to_record` copied flat into a run record (the
#: whole record is ``explanation_detail``, a JSON string); ``None`` for a non-critical end point.
EXPLANATION_FIELDS = ("explanation", "explanation_reason", "family_kind", "family_key", "family_width", "family_loss",
                      "family_index", "family_nullity", "family_grad_norm_inf", "family_label", "family_critical",
                      "wide_width", "wide_index", "index_at_least_narrow", "inertia_agrees", "merge_tol",
                      "subspace_distance")

#: Families listed per teacher in the command's table (all are in ``families.parquet``).
TABLE_FAMILIES = 20
#: Marker area (points²) of a family reached by every run of a width, in the families figure.
_AREA = 500.0
_SHORT = {"global_minimum": "global", "minimum": "min", "degenerate_minimum": "degen-min",
          "strict_saddle": "saddle", "non_strict_saddle": "non-strict", "undetermined": "undet"}


def teacher_network(t: TeacherSpec):
    """The teacher of a spec: ``d → r* → 1``, bias-free, weights ~ N(0, scale²) from its seed."""
    from ..models import init_mlp

    return init_mlp(jax.random.PRNGKey(t.seed), (t.input_dim, t.width, 1), t.activation, bias=False,
                    scale=float(t.scale))


def init_scale(spec: SweepSpec):
    s = spec.student.init_scale
    return s if s == "xavier" else float(s)


class TeacherStudent(FlowKind):
    name = "teacher_student"
    title = "students of several widths learning a teacher network (Şimşek et al. 2021)"
    several_teachers = True
    run_format = "lossatlas-run/3"  # /3: records carry the end point's explanation (family) and continuation

    def parse_widths(self, widths, teacher):
        return tuple(check_int("student.widths", w, 1, 100_000) for w in widths)

    def validate(self, spec):
        for i, (_, sub) in enumerate(spec.teacher_specs()):
            where = f"teachers[{i}]." if spec.teachers else ""
            if sub.data.population and sub.teacher.activation not in ("erf", "relu"):
                raise spec_error(f"{where}data.population", "the closed-form population loss exists for erf and relu, "
                                 f"not {sub.teacher.activation!r}; set population = false and n_samples.")
        for f in spec.student.freeze:
            if f not in ("W1", "W2"):
                raise spec_error("student.freeze", f"unknown array {f!r}: a two-layer bias-free student has "
                                 "W1 and W2.")
        if len(spec.student.freeze) == 2:
            raise spec_error("student.freeze", "freezing both W1 and W2 leaves nothing to train.")

    def run_key(self, spec):
        return {"teacher": spec.to_dict()["teacher"], "data": spec.to_dict()["data"],
                "student": {"init_scale": spec.student.init_scale, "freeze": list(spec.student.freeze)},
                "run": {"t1": spec.run.t1, "handoff_tol": spec.run.handoff_tol, "gtol": spec.run.gtol}}

    def runs(self, spec):
        """Every run, teacher by teacher (spec order), width-major. A teacher's runs carry its
        single-teacher spec, so their ids are those of the same runs in a single-teacher spec."""
        out = []
        for i, (label, sub) in enumerate(spec.teacher_specs()):
            key = json.dumps(self.run_key(sub), sort_keys=True, separators=(",", ":"))
            out += [RunSpec(sub, w, seed, key, teacher=label, teacher_index=i, format=self.run_format)
                    for w in sub.student.widths for seed in sub.seeds]
        return out

    def build(self, run: RunSpec):
        from ..data import teacher_student
        from ..landscape import Landscape
        from ..models import init_mlp

        spec = run.spec
        key = jax.random.fold_in(jax.random.PRNGKey(run.seed), 7919)
        teacher = teacher_network(spec.teacher)
        student = init_mlp(jax.random.fold_in(key, int(run.width)), (spec.teacher.input_dim, int(run.width), 1),
                           spec.teacher.activation, bias=False, scale=init_scale(spec))
        if spec.data.population:
            return Landscape(student, teacher=teacher, freeze=spec.student.freeze), teacher
        data = teacher_student(jax.random.PRNGKey(spec.data.seed), teacher, spec.data.n_samples,
                               noise=spec.data.noise)
        return Landscape(student, data, freeze=spec.student.freeze), teacher

    def global_min_value(self, run, ls):
        spec = run.spec
        realisable = int(run.width) >= spec.teacher.width and (spec.data.population or spec.data.noise == 0.0)
        return 0.0 if realisable and not spec.student.freeze else None

    def reduction_fields(self, run, ls, theta):
        from ..symmetry import reduce_network

        rec = reduce_network(ls.unravel(jnp.asarray(theta)), tol=REDUCTION_TOL).to_record()
        return {
            "r_star": int(run.spec.teacher.width),
            "reduced_width": int(rec["minimal_widths"][0]) if rec["minimal_widths"] else 0,
            "subspace_dim": int(rec["subspace_dim"]),
            "on_expansion_manifold": bool(rec["on_expansion_manifold"]),
            "subspace_key": json.dumps(rec["layers"], sort_keys=True, separators=(",", ":"), default=str),
            "reduction_distance": float(rec["distance"]),
        }

    def end_fields(self, run, ls, end, gmv):
        """The explanation of a critical end point (:func:`lossatlas.pipeline.explain`): the
        `EXPLANATION_FIELDS` flat, the whole record as ``explanation_detail`` (a JSON string, its
        clock times left out: a run's record is the same whenever it is computed, but for
        ``wall_time`` and ``flow_time``) and the narrow critical point as the array
        ``family_theta``. A non-critical end point has none (fields ``None``); an explanation that
        raises leaves ``explanation_error``."""
        fields = {**dict.fromkeys(EXPLANATION_FIELDS), "explanation_detail": None}
        if end.label is None or end.label.value == "not_critical":
            return fields, {}
        try:
            ex = explain(ls, end.theta, end=end, global_min_value=gmv)
            rec = ex.to_record()
        except Exception as e:  # noqa: BLE001 - the explanation is a report, not the run
            fields["explanation_error"] = f"{type(e).__name__}: {e}"
            return fields, {}
        for k in EXPLANATION_FIELDS:
            v = rec.get(k)
            fields[k] = v if v is None or isinstance(v, bool | int | float | str) else json.dumps(v, default=str)
        fields["explanation_detail"] = record_json(rec)
        family_theta = ex.family_theta
        arrays = {} if family_theta is None else {"family_theta": np.asarray(family_theta, dtype=np.float64)}
        return fields, arrays

    def export(self, spec, store):
        """The teacher network (``teacher.npz``; several teachers: ``teachers/<label>.npz``) and,
        for every run, ``endpoints/<run_id>.npz``."""
        if not spec.teachers:
            path = store.root / "teacher.npz"
            save_network(path, teacher_network(spec.teacher))
            return {"teacher": path, **super().export(spec, store)}
        folder = store.root / "teachers"
        folder.mkdir(exist_ok=True)
        out = {}
        for label, sub in spec.teacher_specs():
            out[f"teacher:{label}"] = folder / f"{label}.npz"
            save_network(out[f"teacher:{label}"], teacher_network(sub.teacher))
        return {**out, **super().export(spec, store)}

    # ----------------------------------------------------------------- sweep-level results
    def extras(self, spec, store):
        """Per teacher: the symmetry counts (``extras/counts.json``), the path between permuted
        minima (``extras/path*.json``), and the family catalogue and symmetry table
        (``families.parquet``, ``symmetry.parquet``, from the records)."""
        out = {"counts": _counts(spec, store)}
        fam, sym, totals = _catalogue(spec, store.records())
        store.write_table("families", families_frame(fam))
        store.write_table("symmetry", symmetry_frame(sym))
        out["families"], out["symmetry"], out["width_runs"] = fam, sym, totals
        if spec.report.path:
            paths = {label: _path(self, sub, store, label if spec.teachers else None)
                     for label, sub in spec.teacher_specs()}
            out["path"] = next(iter(paths.values()))
            if spec.teachers:
                out["paths"] = paths
        return out

    def extra_tables(self, spec, extras):
        """Per teacher: its families (at most `TABLE_FAMILIES`, most visited first) with the end
        points of each width reaching them, and the subspaces visited against T and G."""
        tables = []
        fams, sym = extras.get("families") or [], extras.get("symmetry") or []
        counts = {(r["teacher"], r["m"]): r for r in extras.get("width_runs") or []}
        for i, (label, sub) in enumerate(spec.teacher_specs()):
            mine = [f for f in fams if f["teacher_index"] == i]
            ms = list(sub.student.widths)
            head = f"{label}: " if spec.teachers else ""
            if mine:
                shown = sorted(mine, key=lambda f: -f["runs"])[:TABLE_FAMILIES]
                shown.sort(key=lambda f: int(f["family"][1:]))
                rows = [(f["family"], str(f["family_width"]), _fmt(f["family_loss"]), str(f["family_index"]),
                         str(f["family_label"]), _explained_as(f), *[str(f["runs_by_width"].get(m, 0)) for m in ms])
                        for f in shown]
                for key, words in (("critical_unexplained", "critical, no explanation"),
                                   ("not_critical", "not critical")):
                    n = [counts.get((label, m), {}).get(key, 0) for m in ms]
                    if any(n):
                        rows.append(("no family", "", "", "", "", words, *[str(x) for x in n]))
                if len(mine) > len(shown):
                    rows.append((f"… {len(mine) - len(shown)} more", "", "", "", "", "in families.parquet",
                                 *["" for _ in ms]))
                tables.append(Table(f"{head}families of the end points (teacher r* = {sub.teacher.width}; end points "
                                    "per student width m)",
                                    ("family", "r", "loss", "index", "label", "explained as", *[f"m={m}" for m in ms]),
                                    tuple(rows)))
            srows = [x for x in sym if x["teacher_index"] == i]
            if srows:
                tables.append(Table(
                    f"{head}affine subspaces visited against the counts (r* = {sub.teacher.width})",
                    ("m", "r", "end points", "global minima", "families", "subspaces visited", "G(r, m)", "T(r*, m)",
                     "T_zero_loss(r*, m)"),
                    tuple((str(x["m"]), str(x["r"]), str(x["runs"]), str(x["global_runs"]), str(x["families"]),
                           str(x["subspaces"]), _str(x["G"]), _str(x["T"]), _str(x["T_zero_loss"])) for x in srows)))
        return tables

    def extra_lines(self, extras):
        paths = extras.get("paths") or ({"": extras["path"]} if extras.get("path") else {})
        out = []
        for label, p in paths.items():
            if p and p.get("available"):
                out.append(f"{label + ': ' if label else ''}path between permuted minima {p['permutation']}: "
                           f"{p['n_segments']} segments, max loss {p['max_loss']:.3e} (start {p['start_loss']:.3e})")
        fams = extras.get("families") or []
        if fams:
            kinds = {}
            for f in fams:
                for k in f["explanations"].split(","):
                    kinds[k] = kinds.get(k, 0) + 1
            teachers = {f["teacher_index"] for f in fams}
            out.append(f"{len(fams)} families over {len(teachers)} teacher(s) (families.parquet); explained as: "
                       + ", ".join(f"{k} ({v})" for k, v in kinds.items()))
        return out

    def figure_names(self):
        return ("global_fraction", "labels", "families", "symmetry", "spectra", "loss_time", "slices", "path")

    def extra_figures(self, name, store, ok, spec, figdir) -> list[Figure]:
        if name == "families":
            fams, _, counts = _catalogue(spec, store.records())
            return [_fig_families(fams, counts, i, label, sub, figdir, f"families_{label}" if spec.teachers
                                  else "families") for i, (label, sub) in enumerate(spec.teacher_specs())]
        if name == "symmetry":
            _, sym, _ = _catalogue(spec, store.records())
            return [_fig_symmetry(sym, bool(spec.teachers), figdir)]
        return [_fig_path(store, spec, figdir)]

    def table(self, spec, rows):
        t = super().table(spec, rows)
        if spec.teachers:
            rs = ", ".join(f"{label}: r* = {sub.teacher.width}" for label, sub in spec.teacher_specs())
            return Table(f"{spec.name} ({len(spec.teachers)} teachers; {rs})", t.columns, t.rows)
        return Table(f"{spec.name} (teacher width r* = {spec.teacher.width})", t.columns, t.rows)


def _explained_as(f: dict) -> str:
    """``global_minimum (reducible)``: the explanations of a family with the verdicts behind them."""
    kinds = f.get("family_kinds") or ""
    return f["explanations"] + (f" ({kinds})" if kinds and kinds != f["explanations"] else "")


def _fmt(x) -> str:
    return "" if x is None else f"{x:.3e}"


def _str(x) -> str:
    return "" if x is None else str(x)


def _catalogue(spec, records) -> tuple[list[dict], list[dict], list[dict]]:
    """The family rows, the symmetry rows and the run counts per (teacher, m) of the sweep's
    records (see :mod:`._families`)."""
    subs = spec.teacher_specs()
    widths = {(i, label): list(sub.student.widths) for i, (label, sub) in enumerate(subs)}
    # records name their teacher by label; a record of an old single-teacher sweep names none
    records = [r if r.get("teacher") else {**r, "teacher": subs[0][0], "teacher_index": 0} for r in records]
    return (family_rows(records, widths),
            symmetry_rows(records, {(i, label): (sub.teacher.width, list(sub.student.widths))
                                    for i, (label, sub) in enumerate(subs)}),
            width_counts(records))


def _counts(spec, store):
    from ..symmetry import count_G, count_T, count_T_zero_loss

    rows = []
    for label, sub in spec.teacher_specs():
        rstar = sub.teacher.width
        rows += [{"teacher": label, "r_star": rstar, "m": m, "T": count_T(rstar, m),
                  "T_zero_loss": count_T_zero_loss(rstar, m), "G": {str(r): count_G(r, m) for r in range(1, rstar)}}
                 for m in sub.student.widths if m >= rstar]
    write_json_atomic(store.extras / "counts.json", rows)
    return rows


def _path(kind, spec, store, label: str | None = None):
    """The path between two permuted global minima of the teacher of `spec` (a single-teacher
    spec); stored as ``extras/path.npz`` and ``path.json`` (``path-<label>.*`` for a teacher of
    several)."""
    stem = "path" if label is None else f"path-{label}"
    path_file, meta_file = store.extras / f"{stem}.npz", store.extras / f"{stem}.json"
    if path_file.is_file() and meta_file.is_file():
        return json.loads(meta_file.read_text())
    rstar = spec.teacher.width
    recs = [r for r in store.records() if r.get("run_status") == "ok" and r.get("width") == str(rstar)
            and r.get("label") == "global_minimum" and (label is None or r.get("teacher") == label)]
    if not recs or rstar < 2:
        meta = {"available": False,
                "reason": f"no run of width r* = {rstar} reached a global minimum" if rstar >= 2
                else "r* = 1 has no non-trivial permutation"}
        write_json_atomic(meta_file, meta)
        return meta
    from ..symmetry import connecting_path, path_loss_profile

    rec = sorted(recs, key=lambda r: r["seed"])[0]
    run = next(r for r in kind.runs(spec) if r.run_id == rec["run_id"])
    ls, _ = kind.build(run)
    net = ls.unravel(jnp.asarray(store.arrays(rec["run_id"])["theta"]))
    perm = np.roll(np.arange(rstar), -1)
    path = connecting_path(net, perm)
    from ..landscape import Landscape

    wide = Landscape(path.start, ls.data, teacher=ls.teacher)  # no frozen arrays: every parameter moves
    prof = path_loss_profile(wide, path, samples_per_segment=64)
    with atomic_path(path_file) as tmp, open(tmp, "wb") as f:
        np.savez(f, waypoints=path.waypoints, t=prof.t, loss=prof.loss)
    meta = {"available": True, "run_id": rec["run_id"], "teacher": label, "permutation": perm.tolist(),
            "n_segments": int(path.n_segments), **prof.to_record()}
    write_json_atomic(meta_file, meta)
    return meta


def _fig_families(fams, counts, index, label, sub, figdir, name) -> Figure:
    """Family × student width of one teacher; marker area = fraction of that width's runs."""
    plt = pyplot()
    mine = [f for f in fams if f["teacher_index"] == index]
    ms = list(sub.student.widths)
    by_m = {c["m"]: c for c in counts if c["teacher_index"] == index}
    runs = {m: by_m.get(m, {}).get("runs", 0) for m in ms}
    shown = mine[:40]  # the catalogue's order: by width r, then loss
    rest = mine[40:]
    rows = [(f"{f['family']}  r={f['family_width']}  L={_fmt(f['family_loss'])}  i={f['family_index']}  "
             f"{_SHORT.get(str(f['family_label']), f['family_label'])}",
             f["fraction_by_width"], f["runs_by_width"], LABEL_COLORS.get(str(f["family_label"]), "tab:purple"))
            for f in shown]
    if rest:
        rows.append((f"{len(rest)} more families", {m: sum(f["fraction_by_width"].get(m, 0) for f in rest) for m in ms},
                     {m: sum(f["runs_by_width"].get(m, 0) for f in rest) for m in ms}, "0.5"))
    for key, words, color in (("critical_unexplained", "critical, no explanation", LABEL_COLORS["undetermined"]),
                              ("not_critical", "not critical", LABEL_COLORS["not_critical"])):
        n = {m: by_m.get(m, {}).get(key, 0) for m in ms}
        if any(n.values()):
            rows.append((f"no family: {words}", {m: n[m] / runs[m] if runs[m] else 0.0 for m in ms}, n, color))
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * max(len(ms), 3) + 3.2, 1.2 + 0.32 * max(len(rows), 3)))
    has = bool(mine)
    if rows:
        for y, (_, frac, count, color) in enumerate(rows):
            xs = [j for j, m in enumerate(ms) if count.get(m, 0)]
            area = [_AREA * frac[ms[j]] for j in xs]
            ax.scatter(xs, [y] * len(xs), s=area, color=color, alpha=0.75, edgecolors="k", linewidths=0.4)
            for j, a in zip(xs, area, strict=True):
                ax.annotate(str(count[ms[j]]), (j, y), xytext=(np.sqrt(a / np.pi) + 3, -3), textcoords="offset points",
                            fontsize=6)
        for f in (1.0, 0.5, 0.1):
            ax.scatter([], [], s=_AREA * f, color="0.8", edgecolors="k", linewidths=0.4, label=f"{f:.0%} of runs")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), labelspacing=1.6, borderpad=1.0,
                  frameon=False)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xticks(range(len(ms)), [str(m) for m in ms])
        ax.set_xlim(-0.6, len(ms) - 0.4)
        ax.grid(True, color="0.92", lw=0.5)
        ax.set_axisbelow(True)
    else:
        no_data(ax, "no end point of this teacher was explained (none critical, or no run finished)")
    ax.set_xlabel("student width m")
    ax.set_title(f"Families of {label} (r* = {sub.teacher.width}): area = fraction of the width's runs", fontsize=9)
    colours = ", ".join(f"{k.replace('_', ' ')} {v[4:] if v.startswith('tab:') else v}"
                        for k, v in LABEL_COLORS.items() if k in {str(f["family_label"]) for f in mine})
    return save(fig, figdir, name,
                f"Teacher {label} (r* = {sub.teacher.width}): every critical end point is explained by the critical "
                "point of the narrowest network it reduces to (its family: width r, loss L, index i). One row per "
                "family, one column per student width m; the marker's area is the fraction of that width's runs "
                "reaching the family, the number beside it the count. Colour = the family's label"
                + (f" ({colours})" if colours else "") + "; the last rows count the runs in no family (not "
                "critical, or critical without an explanation). Look for the families that survive as m grows, and "
                "for saddles of narrow widths (r < r*) reached from wide students.", has)


def _fig_symmetry(sym, several: bool, figdir) -> Figure:
    """Distinct subspaces visited per (m, r), one panel per teacher, against T(r*, m) (global
    minima, r = r*) or families × G(r, m) (the other narrow widths r < r*)."""
    plt = pyplot()
    panels: dict = {}
    for x in sym:
        if x["r_star"] is None or x["r"] > x["r_star"]:
            continue
        if x["r"] == x["r_star"]:
            if not x["global_runs"] or x["T"] is None:
                continue
            row = (x, x["global_subspaces"], x["T"])
        elif x["G"] is not None:
            row = (x, x["subspaces"], x["families"] * x["G"])
        else:
            continue
        panels.setdefault((x["teacher_index"], x["teacher"]), []).append(row)
    n = max(1, len(panels))
    widths = [max(len(rows), 2) for rows in panels.values()] or [2]
    fig, axes = plt.subplots(1, n, figsize=(1.5 + 0.5 * sum(widths) + 0.6 * n, 3.6), sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": widths}, layout="constrained")
    for ax, ((_, teacher), rows) in zip(axes[0], sorted(panels.items()), strict=False):
        xs = np.arange(len(rows))
        ax.bar(xs - 0.2, [r[1] for r in rows], width=0.4, label="distinct subspaces visited")
        ax.bar(xs + 0.2, [float(r[2]) for r in rows], width=0.4, alpha=0.6,
               label="T(r*, m) at r = r*; families × G(r, m) below")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"m={x['m']}\nr={x['r']}" for x, _, _ in rows], fontsize=7)
        if several:
            ax.set_title(f"{teacher} (r* = {rows[0][0]['r_star']})", fontsize=8)
    if panels:
        axes[0][0].legend(fontsize=7)
        reason = ""
    else:
        reason = "no critical end point reduced to a width r ≤ r* (no run reached a symmetry-induced critical point)"
        no_data(axes[0][0], reason)
    fig.suptitle("Symmetry-induced critical subspaces", fontsize=10)
    return save(fig, figdir, "symmetry",
                "For each teacher (one panel each), student width m and narrow width r ≤ r* of the explained end "
                "points: how many distinct affine subspaces (label maps) the flows visited, next to how many exist "
                "(T(r*, m) for the global minima at r = r*; G(r, m) per family of width r < r*, times the number of "
                "such families reached). Few visited out of many means the flow prefers some embeddings. "
                "symmetry.parquet has every (teacher, m, r) with T_zero_loss too." + (f" No data: {reason}." if reason
                                                                                      else ""), bool(panels))


def _fig_path(store, spec, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    stems = ([(None, "path")] if not spec.teachers else
             [(label, f"path-{label}") for label, _ in spec.teacher_specs()])
    drawn, reasons = [], []
    for label, stem in stems:
        meta = _read_json(store.extras / f"{stem}.json") or {}
        pfile = store.extras / f"{stem}.npz"
        if meta.get("available") and pfile.is_file():
            with np.load(pfile, allow_pickle=False) as z:
                ax.plot(z["t"], z["loss"], lw=1, label=None if label is None else
                        f"{label}: {meta['permutation']}, max {meta['max_loss']:.1e}")
            drawn.append(meta)
        else:
            reason = meta.get("reason", "no path computed (report.path = false)")
            reasons.append(reason if label is None else f"{label}: {reason}")
    has = bool(drawn)
    if has:
        for q in range(max(int(m["n_segments"]) for m in drawn) + 1):
            ax.axvline(q, color="0.85", lw=0.5)
        ax.set_xlabel("segment")
        ax.set_ylabel("loss")
        if spec.teachers:
            ax.legend(fontsize=6)
            ax.set_title("Loss along paths to permuted minima", fontsize=8)
        else:
            ax.set_title(f"Loss along the path to the permuted minimum {drawn[0]['permutation']} "
                         f"(max {drawn[0]['max_loss']:.2e})", fontsize=8)
        caption = ("Loss along a piecewise-linear path from a global minimum to its permuted copy through one "
                   "extra neuron (Şimşek et al. 2021)" + (", one per teacher" if spec.teachers else "") + ". It "
                   "stays at zero up to round-off: values of order ±1e-16 (even slightly negative, from the "
                   "cancellation in the closed-form population loss) are float64 round-off, not a barrier."
                   + (f" Not drawn: {'; '.join(reasons)}." if reasons else ""))
    else:
        reason = "; ".join(reasons)
        no_data(ax, reason)
        ax.set_title("Path between permuted minima")
        caption = f"Path between two permuted global minima. No data: {reason}."
    return save(fig, figdir, "path", caption, has)


def _read_json(p: Path):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, json.JSONDecodeError):
        return None


