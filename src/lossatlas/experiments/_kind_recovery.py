"""``kind = "recovery"``: local recovery near the branches of the global-minimum set (Zhang, Zhang,
Luo): a random teacher of width m0 = ``teacher.width`` in dimension d = ``teacher.input_dim``;
every branch of every student width m, every sample size in ``data.sample_sizes`` and every seed
is one run of ``run.starts`` trials started ``run.eps`` away from random points of the branch;
the report plots the recovery probability versus n with each branch's threshold marked."""

from __future__ import annotations

from .._errors import InputError
from ._checks import check_int, spec_error
from ._kind import ExperimentKind, Table
from ._plot import no_data, pyplot, save


class Recovery(ExperimentKind):
    name = "recovery"
    title = "local recovery near the branches of the global-minimum set (Zhang, Zhang, Luo)"

    def parse_widths(self, widths, teacher):
        from ..recovery import enumerate_branches

        out = tuple(check_int("student.widths", w, 1, 100_000) for w in widths)
        for m in out:
            try:
                enumerate_branches(m, teacher.width, teacher.input_dim, teacher.activation)
            except InputError as e:
                raise spec_error("student.widths", str(e)) from None
        return out

    def validate(self, spec):
        if spec.student.freeze:
            raise spec_error("student.freeze", "local recovery trains every array; leave freeze empty.")

    def run_key(self, spec):
        d = spec.to_dict()
        return {"teacher": d["teacher"], "data": d["data"],
                "student": {"init_scale": spec.student.init_scale, "freeze": []},
                "run": {"t1": spec.run.t1, "handoff_tol": spec.run.handoff_tol, "gtol": spec.run.gtol,
                        "starts": spec.run.starts, "eps": spec.run.eps}}

    def run_widths(self, spec):
        from ..recovery import enumerate_branches

        t = spec.teacher
        return [(int(m), b, int(n))
                for m in spec.student.widths
                for b, _ in enumerate(enumerate_branches(m, t.width, t.input_dim, t.activation))
                for n in spec.data.sample_sizes]

    def run_one(self, run):
        from ..recovery import enumerate_branches, local_recovery, random_teacher

        spec, t = run.spec, run.spec.teacher
        m, b, n = (int(x) for x in run.width)
        branch = enumerate_branches(m, t.width, t.input_dim, t.activation)[b]
        teacher = random_teacher(t.width, t.input_dim, t.activation, seed=t.seed)
        res = local_recovery(branch, teacher, n, eps=float(spec.run.eps), trials=int(spec.run.starts),
                             seed=int(run.seed))
        rec = res.to_record()
        fields = {"m": m, "branch_index": b, "branch": rec["branch"], "n": n,
                  "threshold": int(rec["threshold"]), "codim": int(branch.codim), "dim": int(branch.dim),
                  "morse_bott": bool(branch.morse_bott), "bound": int(m * (t.input_dim + 1)),
                  "trials": int(spec.run.starts), "probability": float(rec["probability"]),
                  **{f"count_{k}": int(v) for k, v in rec["counts"].items()}}
        return fields, {"train_rmse": res.train_rmse, "test_rmse": res.test_rmse}

    def summary(self, df):
        ok = df[df["run_status"] == "ok"]
        rows = []
        for (m, b, n), g in ok.groupby(["m", "branch_index", "n"]):
            trials = int(g["trials"].sum())
            rows.append({"width": f"{int(m)}x{int(b)}x{int(n)}", "m": int(m), "branch": str(g["branch"].iloc[0]),
                         "n": int(n), "trials": trials,
                         "probability": float((g["probability"] * g["trials"]).sum() / trials),
                         "threshold": int(g["threshold"].iloc[0]), "morse_bott": bool(g["morse_bott"].iloc[0]),
                         "bound": int(g["bound"].iloc[0])})
        return sorted(rows, key=lambda r: (r["m"], r["branch"], r["n"]))

    def table(self, spec, rows):
        body = tuple((str(r["m"]), r["branch"], str(r["n"]), str(r["trials"]), f"{r['probability']:.3f}",
                      str(r["threshold"]), str(r["morse_bott"]), str(r["bound"])) for r in rows)
        return Table(f"local recovery: {spec.name}", ("m", "branch", "n", "trials", "recovery probability",
                                                      "threshold N_t", "Morse-Bott", "m(d+1)"), body)

    def figures(self, store, df, spec, figdir):
        plt = pyplot()
        rows = self.summary(df)
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        branches = sorted({(r["m"], r["branch"]) for r in rows})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (m, name) in enumerate(branches):
            sel = [r for r in rows if (r["m"], r["branch"]) == (m, name)]
            c = colors[i % len(colors)]
            ax.plot([r["n"] for r in sel], [r["probability"] for r in sel], "o-", color=c,
                    label=f"m={m} {name} (N_t={sel[0]['threshold']}{'' if sel[0]['morse_bott'] else ', not MB'})")
            ax.axvline(sel[0]["threshold"], color=c, ls=":", lw=1)
        if rows:
            ax.set_xscale("log", base=2)
            ax.legend(fontsize=6)
        else:
            no_data(ax, "no finished run")
        ax.set_xlabel("sample size n")
        ax.set_ylabel("recovery probability")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title("Local recovery near each branch (dotted: threshold N_t)")
        return [save(fig, figdir, "recovery_probability",
                     "Probability that a descent started near a branch of the global-minimum set recovers the "
                     "teacher, versus the sample size n. Zhang, Zhang & Luo predict recovery above each branch's "
                     "threshold N_t (dotted) and imperfect interpolating minima below it.", bool(rows))]
