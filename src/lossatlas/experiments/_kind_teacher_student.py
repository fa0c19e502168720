"""``kind = "teacher_student"``: students of several widths learning a two-layer bias-free teacher
of minimal width r* (closed-form Gaussian population loss, or N teacher-labelled samples); the
end points are reduced to their minimal networks and compared with the symmetry counts
T(r*, m) and G(r, m) of Şimşek et al. (2021), and a zero-loss path joins two permuted minima."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..data import atomic_path, save_network
from ._checks import check_int, spec_error
from ._flowruns import FlowKind
from ._kind import Figure, Table
from ._plot import no_data, pyplot, save
from ._spec import RunSpec, SweepSpec, TeacherSpec
from ._store import write_json_atomic

#: Relative tolerance for merging neurons of an end point. On a degenerate (non-Morse-Bott)
#: zero-loss branch, copies of one teacher neuron approach each other only as fast as the loss
#: allows: a loss of 1e-16 leaves them ~1e-4 apart (the function differs at second order).
REDUCTION_TOL = 1e-3


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

    def parse_widths(self, widths, teacher):
        return tuple(check_int("student.widths", w, 1, 100_000) for w in widths)

    def validate(self, spec):
        if spec.data.population and spec.teacher.activation not in ("erf", "relu"):
            raise spec_error("data.population", f"the closed-form population loss exists for erf and relu, not "
                             f"{spec.teacher.activation!r}; set population = false and n_samples.")
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

    def export(self, spec, store):
        """``teacher.npz`` (the teacher network) and, for every run, ``endpoints/<run_id>.npz``."""
        path = store.root / "teacher.npz"
        save_network(path, teacher_network(spec.teacher))
        return {"teacher": path, **super().export(spec, store)}

    # ----------------------------------------------------------------- sweep-level results
    def extras(self, spec, store):
        out = {"counts": _counts(spec, store)}
        if spec.report.path:
            out["path"] = _path(self, spec, store)
        return out

    def extra_tables(self, spec, extras):
        counts = extras.get("counts") or []
        if not counts:
            return []
        rows = tuple((str(c["m"]), str(c["T"]), str(c["T_zero_loss"]),
                      ", ".join(f"r={k}: {v}" for k, v in c["G"].items())) for c in counts)
        return [Table(f"symmetry counts (r* = {spec.teacher.width})", ("m", "T(r*, m)", "T_zero_loss",
                                                                         "G(r, m), r < r*"), rows)]

    def extra_lines(self, extras):
        p = extras.get("path")
        if p and p.get("available"):
            return [f"path between permuted minima {p['permutation']}: {p['n_segments']} segments, "
                    f"max loss {p['max_loss']:.3e} (start {p['start_loss']:.3e})"]
        return []

    def figure_names(self):
        return ("global_fraction", "labels", "symmetry", "spectra", "loss_time", "slices", "path")

    def extra_figure(self, name, store, ok, widths, figdir) -> Figure:
        return {"symmetry": _fig_symmetry, "path": _fig_path}[name](store, ok, figdir)

    def table(self, spec, rows):
        t = super().table(spec, rows)
        return Table(f"{spec.name} (teacher width r* = {spec.teacher.width})", t.columns, t.rows)


def _counts(spec, store):
    from ..symmetry import count_G, count_T, count_T_zero_loss

    rstar = spec.teacher.width
    rows = [{"m": m, "T": count_T(rstar, m), "T_zero_loss": count_T_zero_loss(rstar, m),
             "G": {str(r): count_G(r, m) for r in range(1, rstar)}}
            for m in spec.student.widths if m >= rstar]
    write_json_atomic(store.extras / "counts.json", rows)
    return rows


def _path(kind, spec, store):
    path_file, meta_file = store.extras / "path.npz", store.extras / "path.json"
    if path_file.is_file() and meta_file.is_file():
        return json.loads(meta_file.read_text())
    rstar = spec.teacher.width
    recs = [r for r in store.records() if r.get("run_status") == "ok" and r.get("width") == str(rstar)
            and r.get("label") == "global_minimum"]
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
    meta = {"available": True, "run_id": rec["run_id"], "permutation": perm.tolist(),
            "n_segments": int(path.n_segments), **prof.to_record()}
    write_json_atomic(meta_file, meta)
    return meta


def symmetry_rows(ok, counts, r_star: int) -> list[dict]:
    """Per (m, reduced width r): runs, distinct affine subspaces visited, and the count it is
    compared with (G(r, m) for r < r*, T(r*, m) for r = r*). Only critical end points count (a
    non-critical point's reduction is no symmetry-induced critical point), and only reduced widths
    r ≤ r*, for which the counts exist."""
    if "reduced_width" not in ok or not counts:
        return []
    rows = []
    crit = ok[ok["label"] != "not_critical"] if "label" in ok else ok
    widths = crit["width"].astype(str)
    for c in sorted(counts, key=lambda c: int(c["m"])):
        m = int(c["m"])
        sub = crit[widths == str(m)]
        for r, g in sub.dropna(subset=["reduced_width"]).groupby("reduced_width"):
            r = int(r)
            if r > r_star:
                continue
            in_g = str(r) in c["G"]
            rows.append({"m": m, "r": r, "found": int(g["subspace_key"].nunique()) if "subspace_key" in g else 0,
                         "runs": int(len(g)), "count": int(c["G"][str(r)]) if in_g else int(c["T"]),
                         "count_name": "G(r, m)" if in_g else "T(r*, m)"})
    return rows


def _fig_symmetry(store, ok, figdir) -> Figure:
    plt = pyplot()
    counts = _read_json(store.extras / "counts.json") or []
    spec = _read_json(store.root / "spec.json") or {}
    r_star = int(spec.get("spec", {}).get("teacher", {}).get("width", 0))
    rows = symmetry_rows(ok, counts, r_star)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    if rows:
        xs = np.arange(len(rows))
        ax.bar(xs - 0.2, [r["found"] for r in rows], width=0.4, label="distinct subspaces visited")
        ax.bar(xs + 0.2, [r["count"] for r in rows], width=0.4, label="G(r, m) or T(r*, m)", alpha=0.6)
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"m={r['m']}\nr={r['r']}" for r in rows], fontsize=7)
        ax.legend(fontsize=7)
        reason = ""
    else:
        reason = ("no end point was reduced (no run reached a reducible critical point)" if counts
                  else "no student is at least as wide as the teacher: no symmetry counts")
        no_data(ax, reason)
    ax.set_title("Symmetry-induced critical subspaces")
    return save(fig, figdir, "symmetry",
                "For each student width m and reduced width r of the end points: how many distinct affine "
                "subspaces (label maps) the flows visited, next to how many exist (T(r*, m) for global minima, "
                "G(r, m) for r < r*). Few visited out of many means the flow prefers some embeddings."
                + (f" No data: {reason}." if reason else ""), bool(rows))


def _fig_path(store, ok, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    meta = _read_json(store.extras / "path.json") or {}
    pfile = store.extras / "path.npz"
    has = bool(meta.get("available")) and pfile.is_file()
    if has:
        with np.load(pfile, allow_pickle=False) as z:
            ax.plot(z["t"], z["loss"], lw=1)
            for q in range(int(meta["n_segments"]) + 1):
                ax.axvline(q, color="0.85", lw=0.5)
        ax.set_xlabel("segment")
        ax.set_ylabel("loss")
        ax.set_title(f"Loss along the path to the permuted minimum {meta['permutation']} "
                     f"(max {meta['max_loss']:.2e})", fontsize=8)
        caption = ("Loss along a piecewise-linear path from a global minimum to its permuted copy through one "
                   "extra neuron (Şimşek et al. 2021). It stays at zero up to round-off: values of order "
                   "±1e-16 (even slightly negative, from the cancellation in the closed-form population loss) "
                   "are float64 round-off, not a barrier.")
    else:
        reason = meta.get("reason", "no path computed (report.path = false)")
        no_data(ax, reason)
        ax.set_title("Path between permuted minima")
        caption = f"Path between two permuted global minima. No data: {reason}."
    return save(fig, figdir, "path", caption, has)


def _read_json(p: Path):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, json.JSONDecodeError):
        return None


