"""Markdown tables of a certified atlas (the ones in docs/atlas.md), from a sweep folder alone.

    lossatlas atlas examples/specs/certified_atlas_small.toml --out certified-small --workers 2
    python examples/certified_atlas_tables.py certified-small > tables.md

Per teacher: the outcome of every run by student width m (labels, explanation kinds, continued runs),
the family catalogue (``families.parquet``: each narrow critical point reached, its width r, loss,
index and label, and how many end points of each width reach it) and the symmetry table
(``symmetry.parquet``: per m and r, the distinct affine subspaces visited against T(r*, m),
T_zero_loss(r*, m) and G(r, m) of Şimşek et al. 2021).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else (f"{v:.4g}" if isinstance(v, float) else str(v))
                                       for v in row) + " |")
    return "\n".join(lines)


def outcomes(res: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (teacher, m), g in res.groupby(["teacher", "width_int"], sort=True):
        lab = g["label"].fillna("error").value_counts()
        ex = g["explanation"].fillna("none").value_counts()
        cont = g["continuation"].notna().sum() if "continuation" in g else 0
        rows.append({"teacher": teacher, "m": int(m), "runs": len(g),
                     "global_minimum": int(lab.get("global_minimum", 0)), "minimum": int(lab.get("minimum", 0)),
                     "degenerate_min.": int(lab.get("degenerate_minimum", 0)),
                     "strict_saddle": int(lab.get("strict_saddle", 0)),
                     "non_strict_saddle": int(lab.get("non_strict_saddle", 0)),
                     "not_critical": int(lab.get("not_critical", 0)), "undetermined": int(lab.get("undetermined", 0)),
                     "reducible": int(ex.get("reducible", 0)), "irreducible": int(ex.get("irreducible", 0)),
                     "unexplained": int(ex.get("unexplained", 0)), "no explanation": int(ex.get("none", 0)),
                     "continued": int(cont)})
    return pd.DataFrame(rows)


def main(out: Path) -> None:
    res = pd.read_parquet(out / "results.parquet")
    res = res[res["run_status"] == "ok"] if "run_status" in res else res
    fam = pd.read_parquet(out / "families.parquet")
    sym = pd.read_parquet(out / "symmetry.parquet")
    n = len(res)
    bad = int(res["label"].isin(["not_critical", "undetermined"]).sum())
    print(f"{n} runs; not_critical + undetermined: {bad} ({100 * bad / max(n, 1):.2f} %); "
          f"unexplained: {int((res['explanation'] == 'unexplained').sum())}; "
          f"no explanation: {int(res['explanation'].isna().sum())}\n")
    print("### Outcomes by teacher and student width m\n")
    print(md(outcomes(res)) + "\n")
    for teacher, g in fam.groupby("teacher_index", sort=True):
        label = g["teacher"].iloc[0]
        ms = sorted(int(c[1:]) for c in g.columns if c.startswith("m") and c[1:].isdigit() and g[c].notna().any())
        t = g[["family", "family_width", "family_loss", "family_index", "family_nullity", "family_label",
               "explanations", "runs"] + [f"m{m}" for m in ms]].rename(
            columns={"family_width": "r", "family_loss": "loss", "family_index": "index", "family_nullity": "nullity",
                     "family_label": "label", **{f"m{m}": f"m={m}" for m in ms}})
        print(f"### Families of `{label}` (r* = {g['r_star'].iloc[0]})\n")
        print(md(t) + "\n")
        s = sym[sym["teacher_index"] == teacher][["m", "r", "runs", "global_runs", "families", "subspaces",
                                                  "global_subspaces", "G", "T", "T_zero_loss"]]
        print(f"Subspaces visited (`{label}`):\n")
        print(md(s) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
