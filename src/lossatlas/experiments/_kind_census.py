"""``kind = "census"``: soft committee machines against the teacher I_n (Safran & Shamir); each
run is one seed with ``run.starts`` starts; the report shows the spurious fraction versus k with
its Wilson interval and k·loss of the spurious orbits."""

from __future__ import annotations

import json

import numpy as np

from ..census import wilson_interval
from ._checks import check_int, spec_error
from ._kind import ExperimentKind, Figure, Table
from ._plot import no_data, pyplot, save


class Census(ExperimentKind):
    name = "census"
    title = "census of spurious minima of two-layer ReLU committee machines (Safran & Shamir)"

    def parse_widths(self, widths, teacher):
        out = []
        for w in widths:
            if isinstance(w, list | tuple):
                if len(w) != 2:
                    raise spec_error("student.widths", "census entries are k or [k, n] pairs.")
                out.append(tuple(check_int("student.widths", x, 1, 1000) for x in w))
            else:
                k = check_int("student.widths", w, 1, 1000)
                out.append((k, k))
        return tuple(out)

    def validate(self, spec):
        if spec.student.freeze:
            raise spec_error("student.freeze", "the census fixes the second layer itself; leave freeze empty.")

    def run_key(self, spec):
        d = spec.to_dict()
        return {"teacher": d["teacher"], "data": d["data"],
                "student": {"init_scale": spec.student.init_scale, "freeze": []},
                "run": {"t1": spec.run.t1, "handoff_tol": spec.run.handoff_tol, "gtol": spec.run.gtol,
                        "starts": spec.run.starts}}

    def run_one(self, run):
        from ..census import run_census

        k, n = (int(x) for x in run.width)
        res = run_census(k, n, starts=int(run.spec.run.starts), seed=int(run.seed),
                         gtol=max(float(run.spec.run.gtol), 1e-10))
        rec = res.to_record()
        orbits = rec.pop("orbits")
        spurious = [o for o in orbits if o["label"] != "global_minimum"]
        fields = {
            "k": k, "n": n, "starts": rec["starts"],
            "global_count": rec["global_count"], "spurious_count": rec["spurious_count"],
            "other_count": rec["other_count"], "unconverged": rec["unconverged"],
            "global_fraction": rec["global_fraction"], "spurious_fraction": rec["spurious_fraction"],
            "lowest_spurious_loss": min((o["loss"] for o in spurious), default=None),
            "orbits_json": json.dumps([{kk: v for kk, v in o.items() if kk != "W"} for o in orbits]),
        }
        return fields, {f"orbit{i}_W": np.asarray(o["W"]) for i, o in enumerate(orbits)}

    def summary(self, df):
        rows = []
        ok = df[df["run_status"] == "ok"]
        for (k, n), g in ok.groupby(["k", "n"]):
            starts = int(g["starts"].sum())
            sp = int(g["spurious_count"].sum())
            lo, hi = wilson_interval(sp, starts)
            low = g["lowest_spurious_loss"].dropna()
            rows.append({"width": f"{int(k)}x{int(n)}", "k": int(k), "n": int(n), "runs": int(len(g)),
                         "starts": starts, "spurious_fraction": sp / starts, "spurious_interval": [lo, hi],
                         "global_fraction": int(g["global_count"].sum()) / starts,
                         "unconverged": int(g["unconverged"].sum()),
                         "lowest_spurious_loss": float(low.min()) if len(low) else None})
        return sorted(rows, key=lambda r: (r["k"], r["n"]))

    def table(self, spec, rows):
        body = tuple((str(r["k"]), str(r["n"]), str(r["starts"]), f"{r['spurious_fraction']:.4f}",
                      f"[{r['spurious_interval'][0]:.4f}, {r['spurious_interval'][1]:.4f}]", str(r["unconverged"]),
                      "" if r["lowest_spurious_loss"] is None else f"{r['lowest_spurious_loss']:.10f}")
                     for r in rows)
        return Table(f"census: {spec.name}", ("k", "n", "starts", "spurious fraction", "95% Wilson",
                                              "unconverged", "lowest spurious loss"), body)

    def figures(self, store, df, spec, figdir):
        plt = pyplot()
        rows = self.summary(df)
        out: list[Figure] = []
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for n_eq in (True, False):
            sel = [r for r in rows if (r["k"] == r["n"]) == n_eq]
            if not sel:
                continue
            ks = np.array([r["k"] for r in sel])
            f = np.array([r["spurious_fraction"] for r in sel])
            lo = np.array([r["spurious_interval"][0] for r in sel])
            hi = np.array([r["spurious_interval"][1] for r in sel])
            ax.errorbar(ks, f, yerr=[f - lo, hi - f], fmt="o-" if n_eq else "s", capsize=3,
                        label="k = n" if n_eq else "k ≠ n (over/under-parameterised)")
        if rows:
            ax.legend(fontsize=7)
        else:
            no_data(ax, "no finished census run")
        ax.set_xlabel("student width k")
        ax.set_ylabel("spurious fraction (95% Wilson)")
        ax.set_title("Committee machines: starts ending in spurious minima")
        out.append(save(fig, figdir, "census_fraction",
                        "Fraction of random starts whose polished end point is a spurious (non-global) local "
                        "minimum, per k, with 95% Wilson intervals. Safran & Shamir found it grows with k "
                        "from k = 6.", bool(rows)))
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ok = df[df["run_status"] == "ok"]
        any_sp = False
        for _, r in ok.iterrows():
            for o in json.loads(r["orbits_json"]):
                if o["label"] != "global_minimum":
                    any_sp = True
                    ax.scatter(r["k"], o["k_times_loss"], s=10 + 60 * o["count"] / max(r["starts"], 1),
                               color="tab:red", alpha=0.6)
        if not any_sp:
            no_data(ax, "no spurious orbit found")
        ax.set_xlabel("student width k")
        ax.set_ylabel("k · loss of spurious orbits")
        ax.set_title("Spurious minima (marker size ∝ frequency)")
        out.append(save(fig, figdir, "census_losses",
                        "k times the loss of every spurious orbit found (marker size: how often it was reached). "
                        "The published lowest spurious minima are reproduced to 1e-8 (docs/census.md).", any_sp))
        return out
