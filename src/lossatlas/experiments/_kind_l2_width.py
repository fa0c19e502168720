"""``kind = "l2_width"``: the width plateau of L2-regularised networks (Jacot et al. 2022): N
teacher-student samples, students of the hidden widths ``student.widths`` (``student.depth``
layers), each run one seed trained with Adam for ``run.steps`` steps at ``run.lam``; the report
shows the best loss per width against N(N+1)."""

from __future__ import annotations

import jax

from ._checks import check_int, spec_error
from ._kind import ExperimentKind, Table
from ._kind_teacher_student import init_scale, teacher_network
from ._plot import no_data, pyplot, save


class L2Width(ExperimentKind):
    name = "l2_width"
    title = "width plateau of L2-regularised minima against N(N+1) (Jacot et al. 2022)"

    def parse_widths(self, widths, teacher):
        return tuple(check_int("student.widths", w, 1, 100_000) for w in widths)

    def validate(self, spec):
        if spec.data.population:
            raise spec_error("data.population", "the L2 width plateau is an empirical-loss experiment: set "
                             "population = false and n_samples = N.")
        if spec.student.freeze:
            raise spec_error("student.freeze", "the L2 width plateau trains every array; leave freeze empty.")

    def run_key(self, spec):
        d = spec.to_dict()
        return {"teacher": d["teacher"], "data": d["data"],
                "student": {"init_scale": spec.student.init_scale, "freeze": [], "depth": spec.student.depth},
                "run": {"t1": spec.run.t1, "handoff_tol": spec.run.handoff_tol, "gtol": spec.run.gtol,
                        "lam": spec.run.lam, "steps": spec.run.steps}}

    def run_one(self, run):
        from ..data import teacher_student
        from ..representation import width_scan

        spec = run.spec
        data = teacher_student(jax.random.PRNGKey(spec.data.seed), teacher_network(spec.teacher),
                               spec.data.n_samples, noise=spec.data.noise)
        scan = width_scan(data, [int(run.width)], float(spec.run.lam), key=jax.random.PRNGKey(int(run.seed)),
                          activation=spec.teacher.activation, depth=int(spec.student.depth), restarts=1,
                          steps=int(spec.run.steps), init_scale=init_scale(spec))
        return {"width_int": int(run.width), "loss": float(scan.best[0]), "lam": scan.lam,
                "n_samples": scan.n_samples, "bound": scan.bound}, {}

    def summary(self, df):
        ok = df[df["run_status"] == "ok"]
        rows = [{"width": int(w), "runs": int(len(g)), "best_loss": float(g["loss"].min()),
                 "median_loss": float(g["loss"].median()), "bound": int(g["bound"].iloc[0])}
                for w, g in ok.groupby("width_int")]
        rows.sort(key=lambda r: r["width"])
        if rows:
            best = min(r["best_loss"] for r in rows)
            plateau = next(r["width"] for r in rows if r["best_loss"] <= best * (1 + 1e-3))
            for r in rows:
                r["plateau_width"] = plateau
        return rows

    def table(self, spec, rows):
        body = tuple((str(r["width"]), str(r["runs"]), f"{r['best_loss']:.8g}", f"{r['median_loss']:.8g}",
                      str(r["bound"]), str(r["plateau_width"])) for r in rows)
        return Table(f"L2 width plateau: {spec.name}", ("width", "runs", "best loss", "median loss", "N(N+1)",
                                                        "plateau width"), body)

    def figures(self, store, df, spec, figdir):
        plt = pyplot()
        rows = self.summary(df)
        ok = df[df["run_status"] == "ok"]
        fig, ax = plt.subplots(figsize=(6, 3.6))
        if rows:
            ax.scatter(ok["width_int"], ok["loss"], s=10, alpha=0.4, label="runs")
            ax.plot([r["width"] for r in rows], [r["best_loss"] for r in rows], "o-", label="best per width")
            ax.axvline(rows[0]["bound"], color="tab:red", ls="--", label="N(N+1)")
            ax.axvline(rows[0]["plateau_width"], color="tab:green", ls=":", label="plateau width")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:
            no_data(ax, "no finished run")
        ax.set_xlabel("hidden width")
        ax.set_ylabel("L2-regularised loss")
        ax.set_title("Width plateau of L2-regularised minima")
        return [save(fig, figdir, "l2_width_plateau",
                     "Regularised loss reached per hidden width (dots: runs; line: best per width). Jacot et al. "
                     "prove every local minimum needs at most N(N+1) neurons per layer (red): the best loss "
                     "should stop improving (green: the plateau width) at or before that bound.", bool(rows))]


