"""Gradient-flow runs, shared by the kinds whose runs are flows from random starts
(``teacher_student``, ``deep_linear``): flow (one per run, or ``vmap``-batched per width), then
:func:`lossatlas.polish` from the flow's end, the symmetry reduction, the spectrum and two 2D
loss slices; and their summary, table, figures and exported networks."""

from __future__ import annotations

import abc
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..data import save_network
from ..landscape import Landscape, batch_loss
from ..pipeline import polish
from ._kind import ExperimentKind, Figure, Table, error_record
from ._plot import LABEL_COLORS, no_data, pyplot, save, width_key
from ._spec import RunSpec, SweepSpec
from ._store import Store

#: Above this many parameters the flows of one width are not vmapped together.
_BATCH_MAX_PARAMS = 5000


class FlowKind(ExperimentKind):
    """Runs that follow the gradient flow from a random start and polish its end point."""

    @abc.abstractmethod
    def build(self, run: RunSpec):
        """``(landscape, teacher network or None)`` of one run, deterministic in its spec."""

    @abc.abstractmethod
    def global_min_value(self, run: RunSpec, ls: Landscape) -> float | None:
        """The landscape's global minimum value when it is known in closed form."""

    def reduction_fields(self, run: RunSpec, ls: Landscape, theta) -> dict:
        """Extra record fields from the end point (default: none)."""
        return {}

    def end_fields(self, run: RunSpec, ls: Landscape, end, gmv) -> tuple[dict, dict]:
        """Extra record fields and arrays from the polished :class:`~lossatlas.pipeline.EndPoint`
        (default: none). Runs after :meth:`reduction_fields`; must not raise for one bad point."""
        return {}, {}

    def figure_names(self) -> tuple[str, ...]:
        return ("global_fraction", "labels", "spectra", "loss_time", "slices")

    # ----------------------------------------------------------------- running
    def run_group(self, store: Store, runs: list[RunSpec]) -> list[tuple[str, bool]]:
        from ..dynamics import gradient_flow_batch

        spec = runs[0].spec
        built, out = [], []
        for r in runs:
            try:
                built.append(self.build(r))
            except Exception as e:  # noqa: BLE001 - one bad run never kills a sweep
                store.write(r.run_id, error_record(r, e), {})
                out.append((r.run_id, False))
                built.append(None)
        live = [i for i, b in enumerate(built) if b is not None]
        flows, batch_time = {}, 0.0
        if len(live) > 1 and built[live[0]][0].n_params <= _BATCH_MAX_PARAMS:
            t0 = time.perf_counter()
            ls0 = built[live[0]][0]
            try:
                fl = gradient_flow_batch(ls0, np.stack([np.asarray(built[i][0].ravel()) for i in live]),
                                         t1=spec.run.t1, steady_tol=spec.run.handoff_tol, solver="tsit5")
                flows = dict(zip(live, fl, strict=True))
            except Exception:  # noqa: BLE001 - fall back to one flow per run
                flows = {}
            batch_time = (time.perf_counter() - t0) / len(live)
        for i in live:
            r = runs[i]
            start = time.perf_counter()
            try:
                ls, _ = built[i]
                gmv = self.global_min_value(r, ls)
                end = polish(ls, ls.ravel(), method="flow-newton", gtol=spec.run.gtol, t1=spec.run.t1,
                             handoff_tol=spec.run.handoff_tol, flow_solver="tsit5", global_min_value=gmv,
                             flow=flows.get(i))
                record, arrays = self._record(r, ls, end, gmv)
                record["batched"] = i in flows
                record["flow_time"] = batch_time if i in flows else end.timings.flow
                record["wall_time"] = time.perf_counter() - start + (batch_time if i in flows else 0.0)
                store.write(r.run_id, record, arrays)
                out.append((r.run_id, True))
            except Exception as e:  # noqa: BLE001 - one bad run never kills a sweep
                store.write(r.run_id, error_record(r, e), {})
                out.append((r.run_id, False))
        return out

    def _record(self, r: RunSpec, ls: Landscape, end, gmv):
        spec = r.spec
        cls, flow = end.classification, end.flow
        lam = cls.eigenvalues
        record = {
            "run_id": r.run_id, "run_status": "ok", "kind": self.name, "width": r.width_str,
            "width_int": int(r.width) if isinstance(r.width, int) else int(min(r.width)),
            "seed": int(r.seed), "activation": ls.model.activation, "input_dim": int(spec.teacher.input_dim),
            "population": bool(ls.is_population), "n_params": int(ls.n_params),
            "loss": end.loss, "grad_norm_inf": end.grad_norm_inf,
            "polish_status": end.result.name, "converged": end.converged, "polish_method": end.method.value,
            "newton_status": end.attempts[0].result.name, "newton_steps": int(sum(a.steps for a in end.attempts)),
            "gradient_floor": end.gradient_floor, "target": end.target,
            "distance_moved": end.distance, "relative_distance_moved": end.relative_distance,
            "max_weight_growth": end.max_weight_growth,
            "flow_status": flow.status.name, "t_final": float(flow.t_final), "flow_steps": int(flow.stats["num_steps"]),
            "label": cls.label.value, "index": int(cls.index), "nullity": int(cls.nullity),
            "tolerance": float(cls.tolerance), "grad_tol": float(cls.evidence.grad_tol),
            "min_eig": float(lam[0]) if lam.size else None, "max_eig": float(lam[-1]) if lam.size else None,
            "global_min_value": gmv, "is_global": cls.label.value == "global_minimum", "reason": cls.reason,
        }
        if r.teacher:
            record.update(teacher=r.teacher, teacher_index=int(r.teacher_index))
        rec = end.to_record()  # the continuation of a first pass that reached no critical point, if any
        cont, detail = rec.get("continuation"), rec.get("continuation_detail")
        record["continuation"] = cont if cont is None or isinstance(cont, str) else record_json(cont)
        record["continuation_detail"] = None if detail is None else record_json(detail)
        try:
            record.update(self.reduction_fields(r, ls, end.theta))
        except Exception as e:  # noqa: BLE001 - the reduction is a report, not the run
            record["reduction_error"] = f"{type(e).__name__}: {e}"
        theta = np.asarray(end.theta)
        arrays = {"theta": theta, "theta0": np.asarray(flow.thetas[0]), "eigenvalues": lam,
                  "flow_t": flow.ts, "flow_loss": flow.losses, "flow_grad": flow.grad_norms}
        fields, more = self.end_fields(r, ls, end, gmv)
        record.update(fields)
        arrays.update(more)
        if spec.report.slices and ls.n_params >= 2:
            arrays.update(_slices(ls, theta, r.seed, spec.report.slice_points, lam.size > 0))
        return record, arrays

    def export(self, spec: SweepSpec, store: Store) -> dict[str, Path]:
        """``endpoints/<run_id>.npz``: every finished run's end point as a network file."""
        folder = store.root / "endpoints"
        folder.mkdir(exist_ok=True)
        out = {}
        runs = {r.run_id: r for r in self.runs(spec)}
        layouts = {}  # one landscape per shape (per run with frozen arrays: their values are the run's own)
        for rec in store.records():
            r = runs.get(rec.get("run_id"))
            if r is None or rec.get("run_status") != "ok":
                continue
            path = folder / f"{r.run_id}.npz"
            if not path.is_file():
                theta = store.arrays(r.run_id).get("theta")
                if theta is None:
                    continue
                key = r.run_id if spec.student.freeze else r.group
                if key not in layouts:
                    layouts[key] = self.build(r)[0]
                save_network(path, layouts[key].unravel(jnp.asarray(theta)))
            out[f"endpoint:{r.run_id}"] = path
        return out

    # ----------------------------------------------------------------- results
    def summary(self, df) -> list[dict]:
        """One row per (teacher, width): runs, failures, the global fraction and the labels.
        Rows carry ``teacher`` when the records name their teacher."""
        rows = []
        if df.empty:
            return rows
        df = with_groups(df)
        ok = df[df["run_status"] == "ok"] if "run_status" in df else df
        for group, g in df.groupby("_group", sort=False):
            gok = ok[ok["_group"] == group]
            labels = gok["label"].value_counts().to_dict() if "label" in gok else {}
            row = {"teacher": g["_teacher"].iloc[0]} if "teacher" in df else {}
            rows.append({
                **row, "width": g["width"].iloc[0], "runs": int(len(g)), "failed": int(len(g) - len(gok)),
                "global_fraction": float(gok["is_global"].mean()) if len(gok) and "is_global" in gok else 0.0,
                "labels": {k: int(v) for k, v in labels.items()},
                "median_grad_norm_inf": float(gok["grad_norm_inf"].median()) if len(gok) else None,
                "median_wall_time": float(gok["wall_time"].median()) if len(gok) and "wall_time" in gok else None,
                "_order": (int(g["_teacher_index"].iloc[0]), width_key(g["width"].iloc[0])),
            })
        rows.sort(key=lambda r: r["_order"])
        return [{k: v for k, v in r.items() if k != "_order"} for r in rows]

    def table(self, spec: SweepSpec, rows: list[dict]) -> Table:
        several = len({r.get("teacher") for r in rows}) > 1
        body = tuple(
            ((str(r["teacher"]),) if several else ())
            + (str(r["width"]), str(r["runs"]), f"{r['global_fraction']:.2f}",
               ", ".join(f"{_SHORT.get(k, k)} {v}" for k, v in sorted(r["labels"].items())),
               "" if r["median_grad_norm_inf"] is None else f"{r['median_grad_norm_inf']:.1e}",
               "" if r["median_wall_time"] is None else f"{r['median_wall_time']:.2f}")
            for r in rows)
        columns = ("width", "runs", "global fraction", "labels", "median ‖∇L‖∞", "median s/run")
        return Table(spec.name, (("teacher",) if several else ()) + columns, body)

    def figures(self, store: Store, df, spec: SweepSpec, figdir: Path) -> list[Figure]:
        df = with_groups(df)
        ok = df[df["run_status"] == "ok"] if "run_status" in df else df
        groups = list(dict.fromkeys(df.sort_values("_order", kind="stable")["_group"]))
        makers = {"global_fraction": _fig_global_fraction, "labels": _fig_labels, "spectra": _fig_spectra,
                  "loss_time": _fig_loss_time, "slices": _fig_slices}
        out = []
        for name in self.figure_names():
            if name in makers:
                out.append(makers[name](store, ok, groups, figdir))
            else:
                out += self.extra_figures(name, store, ok, spec, figdir)
        return out

    def extra_figures(self, name, store, ok, spec, figdir) -> list[Figure]:
        """The kind's own figures called `name` in :meth:`figure_names` (one or several)."""
        raise NotImplementedError(name)


def record_json(obj) -> str:
    """Compact JSON of a nested record, without its clock times (keys ``wall_time`` and
    ``timings``): a run's record does not depend on when or where it was computed."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("wall_time", "timings")}
        if isinstance(x, list | tuple):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(obj), sort_keys=True, separators=(",", ":"), default=str)


def with_groups(df):
    """The results table with the columns the summary and figures group by: ``_teacher``,
    ``_teacher_index``, ``_group`` (the width, or ``<teacher> m=<width>`` when the sweep has
    several teachers) and ``_order`` (teacher index, width)."""
    df = df.copy()
    df["_teacher"] = df["teacher"].fillna("").astype(str) if "teacher" in df else ""
    df["_teacher_index"] = df["teacher_index"].fillna(0).astype(int) if "teacher_index" in df else 0
    several = df["_teacher"].nunique() > 1
    width = df["width"].astype(str)
    df["_group"] = (df["_teacher"] + " m=" + width) if several else width
    df["_order"] = [(int(t), width_key(w)) for t, w in zip(df["_teacher_index"], width, strict=True)]
    return df


_SHORT = {"global_minimum": "global", "minimum": "min", "degenerate_minimum": "degen-min",
          "strict_saddle": "saddle", "non_strict_saddle": "non-strict", "not_critical": "not-crit",
          "undetermined": "undet"}


def _slices(ls, theta, seed, n, have_spectrum) -> dict:
    """2D loss slices around the end point: the plane of the two lowest Hessian eigenvectors and a
    filter-normalised random plane (Li et al. 2018)."""
    from ..curvature import dense_hessian

    out = {}
    scale = max(np.linalg.norm(theta) / np.sqrt(theta.size), 1e-3)
    if have_spectrum and ls.n_params <= 3000:
        _, V = np.linalg.eigh(np.asarray(dense_hessian(ls, jnp.asarray(theta))))
        z, a = _slice(ls, theta, V[:, 0], V[:, 1], n, scale)
        out.update(slice_eig=z, slice_eig_axis=a)
    rng = np.random.default_rng(int(seed))
    d1, d2 = _filter_normalised(ls, theta, rng), _filter_normalised(ls, theta, rng)
    z, a = _slice(ls, theta, d1, d2, n, 1.0)
    out.update(slice_random=z, slice_random_axis=a)
    return out


def _slice(ls, theta, d1, d2, n, extent):
    a = np.linspace(-extent, extent, n)
    A, B = np.meshgrid(a, a, indexing="ij")
    pts = theta[None, :] + A.reshape(-1, 1) * d1[None, :] + B.reshape(-1, 1) * d2[None, :]
    return np.asarray(batch_loss(ls, jnp.asarray(pts))).reshape(n, n), a


def _filter_normalised(ls, theta, rng):
    """Random direction rescaled neuron by neuron to the norms of θ's rows (Li et al. 2018)."""
    d = rng.standard_normal(theta.size)
    for name, sl in ls.slices().items():
        shape = ls.shapes[name]
        t = theta[sl].reshape(shape)
        v = d[sl].reshape(shape)
        if len(shape) == 2:
            vn = np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
            v = v * (np.linalg.norm(t, axis=1, keepdims=True) / vn)
        else:
            v = v * (np.linalg.norm(t) / max(np.linalg.norm(v), 1e-300))
        d[sl] = v.ravel()
    return d


# --------------------------------------------------------------------- figures
def _ticks(groups) -> list[str]:
    """Axis labels of the groups (``erf-r2 m=3`` on two lines)."""
    return [str(g).replace(" m=", "\nm=") for g in groups]


def _fig_global_fraction(store, ok, widths, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(widths)), 3.2))
    frac = [float(ok[ok["_group"] == w]["is_global"].mean()) if (ok["_group"] == w).any() else 0.0 for w in widths]
    ax.bar(_ticks(widths), frac, color="tab:green")
    ax.tick_params(axis="x", labelsize=7 if len(widths) > 8 else 10)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("student width m")
    ax.set_ylabel("fraction reaching a global minimum")
    ax.set_title("Global minima reached")
    return save(fig, figdir, "global_fraction",
                "Fraction of seeds whose polished end point is a global minimum, per student width. Look for "
                "where over-parameterisation makes every start succeed, and for widths below the teacher's "
                "(which cannot reach zero loss).", bool(len(ok)))


def _fig_labels(store, ok, widths, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * len(widths)), 3.2))
    bottom = np.zeros(len(widths))
    present = [lab for lab in LABEL_COLORS if lab in set(ok.get("label", []))]
    for lab in present:
        counts = np.array([int(((ok["_group"] == w) & (ok["label"] == lab)).sum()) for w in widths])
        ax.bar(_ticks(widths), counts, bottom=bottom, label=lab, color=LABEL_COLORS[lab])
        bottom += counts
    ax.tick_params(axis="x", labelsize=7 if len(widths) > 8 else 10)
    ax.set_xlabel("student width m")
    ax.set_ylabel("runs")
    if present:
        ax.legend(fontsize=7)
    ax.set_title("End-point labels")
    return save(fig, figdir, "labels",
                "Label of every polished end point (global minimum, minimum, strict or non-strict saddle, not "
                "critical), stacked per width. Saddles and non-critical end points are where the flow stalled.",
                bool(present))


def _fig_spectra(store, ok, widths, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(widths)), 3.4))
    any_data = False
    for i, w in enumerate(widths):
        for _, r in ok[ok["_group"] == w].iterrows():
            ev = store.arrays(r["run_id"]).get("eigenvalues")
            if ev is None or ev.size == 0:
                continue
            any_data = True
            ax.scatter(np.full(ev.size, i) + np.random.default_rng(int(r["seed"])).uniform(-0.3, 0.3, ev.size),
                       ev, s=4, color=LABEL_COLORS.get(r["label"], "k"), alpha=0.6)
    if any_data:
        ax.set_yscale("symlog", linthresh=1e-8)
        ax.set_xticks(range(len(widths)), _ticks(widths), fontsize=7 if len(widths) > 8 else 10)
    else:
        no_data(ax, "no spectra stored")
    ax.set_xlabel("student width m")
    ax.set_ylabel("Hessian eigenvalues")
    ax.set_title("Spectra at the end points (colour = label)")
    return save(fig, figdir, "spectra",
                "Every Hessian eigenvalue at every end point (symmetric log scale, linear within ±1e-8), coloured "
                "by label. Wide students show many eigenvalues at zero: the flat directions of the affine "
                "subspaces of the symmetry-induced critical points.", any_data)


def _fig_loss_time(store, ok, widths, figdir) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    any_data = False
    for _, r in ok.iterrows():
        a = store.arrays(r["run_id"])
        t, L = a.get("flow_t"), a.get("flow_loss")
        if t is None or t.size < 2:
            continue
        m = t > 0
        any_data = True
        ax.loglog(t[m], np.maximum(L[m], 1e-32), lw=0.7, color=LABEL_COLORS.get(r["label"], "k"), alpha=0.7)
    if not any_data:
        no_data(ax, "no flow stored")
    ax.set_xlabel("time t")
    ax.set_ylabel("loss (floored at 1e-32)")
    ax.set_title("Gradient flow: loss versus time (colour = end label)")
    return save(fig, figdir, "loss_time",
                "Loss along each gradient flow, coloured by the label of its polished end point. Plateaus are "
                "passages near saddles; losses below ~1e-30 are round-off (drawn at 1e-32).", any_data)


def _fig_slices(store, ok, widths, figdir) -> Figure:
    plt = pyplot()
    chosen = []
    for lab in LABEL_COLORS:
        sub = ok[ok["label"] == lab] if "label" in ok else ok.iloc[:0]
        if len(sub):
            chosen.append(sub.iloc[0])
        if len(chosen) == 3:
            break
    fig, axes = plt.subplots(2, max(1, len(chosen)), figsize=(4.2 * max(1, len(chosen)), 7.5), squeeze=False,
                             layout="constrained")
    any_data = False
    for j, r in enumerate(chosen):
        a = store.arrays(r["run_id"])
        for i, (key, title) in enumerate((("slice_eig", "Hessian eigvecs v₁, v₂"),
                                          ("slice_random", "filter-normalised random"))):
            ax = axes[i, j]
            z = a.get(key)
            if z is None:
                no_data(ax, "not stored")
                continue
            any_data = True
            axv = a[key + "_axis"]
            cs = ax.contourf(axv, axv, np.log10(np.maximum(z - z.min(), 0) + 1e-16).T, levels=20)
            ax.plot(0, 0, "w*")
            ax.set_title(f"{r['label']} (m={r['width']})\n{title}", fontsize=8)
            fig.colorbar(cs, ax=ax, shrink=0.85)
    if not chosen:
        no_data(axes[0, 0], "no finished run")
    fig.suptitle("log10(L − min L) on 2D slices around end points", fontsize=9)
    return save(fig, figdir, "slices",
                "log10(L − min L) on two planes through one end point of each label (star): the plane of the two "
                "lowest Hessian eigenvectors, and a filter-normalised random plane. A saddle shows descent along "
                "v₁; a minimum a bowl.", any_data)
