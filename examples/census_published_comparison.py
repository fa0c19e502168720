"""lossatlas' census against the published 2021 data of Safran, Yehudai & Shamir, number by number.

Reads lossatlas' stored census results (``docs/census_results/k*_n*.json``, written by
``lossatlas census --json``) and the published numbers
(``docs/census_results/published_safran_yehudai_shamir_2021.json``, 500 GD runs per k), and for
every k = n present in both:

- the spurious fractions with 95% Wilson intervals, whether the intervals overlap, and two
  tests of "same probability": the pooled two-proportion z-test and Fisher's exact test
  (two-sided);
- the lowest spurious loss (both losses are ½ E[(f − f_T)²]: conversion factor 1);
- the number of distinct spurious orbits, and the Δ(S₂ × S_{k−2}) family's loss and frequency.

Prints the tables as Markdown and writes a figure of both fractions with their intervals.
No recomputation: runs in a few seconds.

Run: ``python examples/census_published_comparison.py [--out census_comparison.png]``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from lossatlas.census import wilson_interval  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "census_results"
PUBLISHED = RESULTS / "published_safran_yehudai_shamir_2021.json"


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when both counts are 0 or all)."""
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0.0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def fisher(x1: int, n1: int, x2: int, n2: int) -> float:
    return float(stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)


def fmt_int(lo_hi) -> str:
    return f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"


def ours() -> list[dict]:
    """Our stored census results with k = n, ordered by k, then by the number of starts."""
    out = []
    for f in RESULTS.glob("k*_n*.json"):
        d = json.loads(f.read_text())
        if d.get("schema", "").startswith("lossatlas.census/") and d["k"] == d["n"]:
            out.append(d)
    return sorted(out, key=lambda d: (d["k"], d["starts"]))


def spurious_orbits(d: dict) -> list[dict]:
    return [o for o in d["orbits"] if o["label"] != "global_minimum"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="census_comparison.png")
    args = ap.parse_args()
    published = {r["k"]: r for r in json.loads(PUBLISHED.read_text())["rows"]}
    rows = [d for d in ours() if d["k"] in published]

    print("| k = n | published | 95% Wilson | lossatlas | 95% Wilson | overlap | z-test p | Fisher p |")
    print("|---|---|---|---|---|---|---|---|")
    fig_rows = []
    for d in rows:
        pub = published[d["k"]]
        x1, n1 = pub["spurious_runs"], pub["runs"]
        x2, n2 = d["spurious_count"], d["starts"]
        w1, w2 = wilson_interval(x1, n1), wilson_interval(x2, n2)
        overlap = "yes" if w1[0] <= w2[1] and w2[0] <= w1[1] else "**no**"
        k_txt = f"{d['k']}" if d["starts"] == 1000 else f"{d['k']} ({d['starts']} starts)"
        print(f"| {k_txt} | {x1}/{n1} = {x1 / n1:.3f} | {fmt_int(w1)} | {x2}/{n2} = {x2 / n2:.3f} "
              f"| {fmt_int(w2)} | {overlap} | {two_proportion_z(x1, n1, x2, n2):.2f} | {fisher(x1, n1, x2, n2):.2f} |")
        fig_rows.append((d["k"], x1 / n1, w1, x2 / n2, w2))

    print()
    print("| k = n | lowest spurious loss, published | lossatlas | difference | spurious orbits, published "
          "| lossatlas | Δ(S₂×S_{k−2}) family, published: loss (runs) | lossatlas: loss (starts) |")
    print("|---|---|---|---|---|---|---|---|")
    for d in rows:
        pub = published[d["k"]]
        sp = spurious_orbits(d)
        low = min((o["loss"] for o in sp), default=None)
        if pub["lowest_spurious_loss"] is None or low is None:
            diff = "—"
        else:
            diff = f"{abs(low - pub['lowest_spurious_loss']):.1e}"
        fam = [o for o in sp if "× ΔS2" in o["isotropy"] and o["isotropy"].startswith(f"ΔS{d['k'] - 2} ")]
        fam_txt = ", ".join(f"{o['loss']:.10f} ({o['count']}/{d['starts']})" for o in fam) or "— (0)"
        pub_fam = ("— (0/500)" if pub["s2_family_loss"] is None
                   else f"{pub['s2_family_loss']:.10f} ({pub['s2_family_runs']}/{pub['runs']})")
        k_txt = f"{d['k']}" if d["starts"] == 1000 else f"{d['k']} ({d['starts']} starts)"
        pub_low = "—" if pub["lowest_spurious_loss"] is None else f"{pub['lowest_spurious_loss']:.10f}"
        our_low = "—" if low is None else f"{low:.10f}"
        print(f"| {k_txt} | {pub_low} | {our_low} | {diff} | {pub['spurious_orbits']} | {len(sp)} "
              f"| {pub_fam} | {fam_txt} |")

    print()
    print("| k = n | Δ(S₂×S_{k−2}) family, published | 95% Wilson | lossatlas | 95% Wilson | intervals overlap "
          "| Fisher exact p |")
    print("|---|---|---|---|---|---|---|")
    for d in rows:
        pub = published[d["k"]]
        x1, n1 = pub["s2_family_runs"], pub["runs"]
        # the family's orbit: the lowest-loss orbit of isotropy Δ(S_{k−2} × S_2)
        fam = sorted((o for o in spurious_orbits(d)
                      if "× ΔS2" in o["isotropy"] and o["isotropy"].startswith(f"ΔS{d['k'] - 2} ")),
                     key=lambda o: o["loss"])
        x2, n2 = (fam[0]["count"] if fam else 0), d["starts"]
        w1, w2 = wilson_interval(x1, n1), wilson_interval(x2, n2)
        overlap = "yes" if w1[0] <= w2[1] and w2[0] <= w1[1] else "**no**"
        k_txt = f"{d['k']}" if d["starts"] == 1000 else f"{d['k']} ({d['starts']} starts)"
        print(f"| {k_txt} | {x1}/{n1} = {x1 / n1:.3f} | {fmt_int(w1)} | {x2}/{n2} = {x2 / n2:.4f} | {fmt_int(w2)} "
              f"| {overlap} | {fisher(x1, n1, x2, n2):.2f} |")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (k, p1, w1, p2, w2) in enumerate(fig_rows):
        dup = sum(1 for r in fig_rows[:i] if r[0] == k)
        x2 = k + 0.12 + 0.12 * dup
        lab1 = "Safran, Yehudai & Shamir 2021 (500 runs)" if i == 0 else None
        lab2 = "lossatlas (1000 starts; 10 000 at the second k = 8 point)" if i == 0 else None
        if dup == 0:
            ax.errorbar(k - 0.12, p1, yerr=[[max(p1 - w1[0], 0.0)], [w1[1] - p1]], fmt="o", color="C3",
                        capsize=3, label=lab1)
        ax.errorbar(x2, p2, yerr=[[max(p2 - w2[0], 0.0)], [w2[1] - p2]], fmt="s", color="C0", capsize=3,
                    label=lab2)
    ax.set_xlabel("k = n")
    ax.set_ylabel("fraction of starts ending at a spurious minimum")
    ax.set_title("census of spurious minima: published vs lossatlas (95% Wilson intervals)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
