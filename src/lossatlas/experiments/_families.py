"""The family catalogue of a teacher-student sweep, from its run records only.

Every critical end point is explained by the critical point of the narrowest network it comes
from (:func:`lossatlas.pipeline.explain`): its *family*, keyed by ``family_key`` (equal narrow
critical points up to permutation and sign have equal keys). Two tables follow from the records:

- :func:`family_rows` (``families.parquet``): per teacher, one row per family: its key, width r,
  loss, index, label and the explanation kinds seen, with how many end points of each student
  width m reach it;
- :func:`symmetry_rows` (``symmetry.parquet``): per teacher, student width m and narrow width r:
  the critical end points, the families, and the distinct affine subspaces visited (distinct
  ``subspace_key``) against the counts T(r*, m), T_zero_loss(r*, m) and G(r, m) of Şimşek et
  al. (2021).

Records of runs that failed, or whose end point is not critical (no ``explanation``), are in
no family; :func:`width_runs` counts every finished run per (teacher, m), the denominators of
the fractions, and :func:`width_counts` splits them into explained, not critical, and critical
but without a family.
"""

from __future__ import annotations

import collections
import math

#: Explanation kinds, in the order they are listed.
EXPLANATIONS = ("global_minimum", "reducible", "irreducible", "unexplained")


def _present(v) -> bool:
    """A record field that holds a value (not missing, None or NaN)."""
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def teacher_of(rec: dict) -> tuple[int, str]:
    """``(teacher_index, teacher label)`` of a record (``(0, "")`` for records without one)."""
    idx = rec.get("teacher_index")
    label = rec.get("teacher")
    return (int(idx) if _present(idx) else 0, str(label) if _present(label) else "")


def explained(rec: dict) -> bool:
    """Whether the record is a finished run with an explained critical end point."""
    return (rec.get("run_status", "ok") == "ok" and _present(rec.get("explanation"))
            and _present(rec.get("family_key")))


def critical(rec: dict) -> bool:
    """Whether the record is a finished run whose end point is labelled critical."""
    return rec.get("run_status", "ok") == "ok" and rec.get("label") not in (None, "not_critical")


def width_runs(records: list[dict], select=None) -> dict[tuple[int, str], dict[int, int]]:
    """Finished runs per teacher and student width (those `select` accepts, if given):
    ``{(index, label): {m: runs}}``."""
    out: dict = collections.defaultdict(lambda: collections.defaultdict(int))
    for rec in records:
        if rec.get("run_status", "ok") != "ok" or (select is not None and not select(rec)):
            continue
        out[teacher_of(rec)][int(rec["width"])] += 1
    return {k: dict(v) for k, v in out.items()}


def width_counts(records: list[dict]) -> list[dict]:
    """Per teacher and student width: finished ``runs``, ``explained`` (in a family),
    ``not_critical``, and ``critical_unexplained`` (critical, but without a family: no
    explanation, e.g. a reduction to width 0, or one that raised)."""
    parts = {"runs": width_runs(records), "explained": width_runs(records, explained),
             "not_critical": width_runs(records, lambda r: not critical(r)),
             "critical_unexplained": width_runs(records, lambda r: critical(r) and not explained(r))}
    return [{"teacher": t[1], "teacher_index": t[0], "m": m,
             **{k: v.get(t, {}).get(m, 0) for k, v in parts.items()}}
            for t, by in sorted(parts["runs"].items()) for m in sorted(by)]


def _mode(values):
    """The most common value (the smallest of the most common ones: deterministic)."""
    values = [v for v in values if _present(v)]
    if not values:
        return None
    counts = collections.Counter(values)
    top = max(counts.values())
    return sorted((v for v, c in counts.items() if c == top), key=str)[0]


def family_rows(records: list[dict], widths: dict[tuple[int, str], list[int]] | None = None) -> list[dict]:
    """One row per (teacher, family) of the explained end points, teachers in index order,
    families by (width r, loss, key) and numbered ``F1``, ``F2``, … per teacher.

    Each row: ``teacher``, ``teacher_index``, ``r_star``, ``family`` (the number), ``family_key``,
    ``family_width``, ``family_loss`` (median over its end points), ``family_index``,
    ``family_nullity`` and ``family_label`` (the most common value; ``consistent`` says whether
    every end point agreed on index and label), ``explanations`` (the kinds seen, comma-joined;
    ``family_kinds`` the reducible / irreducible / unexplained verdicts behind them),
    ``runs`` (end points reaching it), ``runs_by_width`` (``{m: end points}`` for every student
    width m of the teacher: `widths`, or the widths of its finished runs) and ``fraction_by_width``
    (the same over the finished runs of that width).
    """
    totals = width_runs(records)
    groups: dict = collections.defaultdict(list)
    for rec in records:
        if explained(rec):
            groups[(teacher_of(rec), str(rec["family_key"]))].append(rec)
    rows = []
    for teacher in sorted({t for t, _ in groups}):
        ms = sorted(set((widths or {}).get(teacher, ())) | set(totals.get(teacher, {})))
        fams = []
        for (t, key), recs in groups.items():
            if t != teacher:
                continue
            losses = sorted(float(r["family_loss"]) for r in recs if _present(r.get("family_loss")))
            loss = losses[len(losses) // 2] if losses else None
            index, label = _mode(r.get("family_index") for r in recs), _mode(r.get("family_label") for r in recs)
            by_width = collections.Counter(int(r["width"]) for r in recs)
            fams.append({
                "teacher": teacher[1], "teacher_index": teacher[0],
                "r_star": _mode(r.get("r_star") for r in recs),
                "family_key": key, "family_width": _mode(r.get("family_width") for r in recs),
                "family_loss": loss, "family_index": index,
                "family_nullity": _mode(r.get("family_nullity") for r in recs), "family_label": label,
                "consistent": all(r.get("family_index") == index and r.get("family_label") == label for r in recs),
                "explanations": _kinds({str(r["explanation"]) for r in recs}),
                "family_kinds": _kinds({str(r["family_kind"]) for r in recs if _present(r.get("family_kind"))}),
                "runs": len(recs),
                "runs_by_width": {m: int(by_width.get(m, 0)) for m in ms},
                "fraction_by_width": {m: (by_width.get(m, 0) / totals[teacher][m]
                                          if totals.get(teacher, {}).get(m) else 0.0) for m in ms},
            })
        fams.sort(key=lambda f: (_num(f["family_width"]), _num(f["family_loss"]), f["family_key"]))
        for i, f in enumerate(fams, 1):
            rows.append({"family": f"F{i}", **f})
    return rows


def _kinds(seen: set[str]) -> str:
    return ",".join([k for k in EXPLANATIONS if k in seen] + sorted(seen - set(EXPLANATIONS)))


def _num(v) -> float:
    return float(v) if _present(v) else math.inf


def symmetry_rows(records: list[dict],
                  teachers: dict[tuple[int, str], tuple[int, list[int]]] | None = None) -> list[dict]:
    """Per teacher, student width m and narrow width r of the explained critical end points: the
    end points (``runs``, of which ``global_runs`` global minima), the distinct families
    (``families``), the distinct affine subspaces visited (``subspaces``: distinct
    ``subspace_key``; ``global_subspaces`` among the global minima) and the counts ``G`` = G(r, m)
    (the subspaces of one narrow critical point of width r), ``T`` = T(r*, m) and ``T_zero_loss`` =
    T_zero_loss(r*, m) (``None`` where undefined: m < r*, r = 0).

    The narrow width r is the family width (``family_width``), or for records without one the
    reduced width (``reduced_width``) of the critical end points. `teachers` maps
    ``(index, label)`` to ``(r*, widths)``; without it r* comes from the records.
    """
    from ..symmetry import count_G, count_T, count_T_zero_loss

    groups: dict = collections.defaultdict(list)
    rstar: dict = {}
    for rec in records:
        if rec.get("run_status", "ok") != "ok":
            continue
        t = teacher_of(rec)
        if _present(rec.get("r_star")):
            rstar.setdefault(t, int(rec["r_star"]))
        if _present(rec.get("explanation")):
            r = rec.get("family_width")
        elif "explanation" not in rec and rec.get("label") not in (None, "not_critical"):
            r = rec.get("reduced_width")  # a record from before explanations: its reduction
        else:
            continue
        if _present(r):
            groups[(t, int(rec["width"]), int(r))].append(rec)
    for t, (rs, _) in (teachers or {}).items():
        rstar[t] = int(rs)
    rows = []
    for (t, m, r), recs in sorted(groups.items()):
        rs = rstar.get(t)
        glob = [x for x in recs if x.get("explanation") == "global_minimum"
                or ("explanation" not in x and x.get("label") == "global_minimum")]
        rows.append({
            "teacher": t[1], "teacher_index": t[0], "r_star": rs, "m": m, "r": r, "runs": len(recs),
            "global_runs": len(glob),
            "families": len({str(x["family_key"]) for x in recs if _present(x.get("family_key"))}),
            "subspaces": len({str(x["subspace_key"]) for x in recs if _present(x.get("subspace_key"))}),
            "global_subspaces": len({str(x["subspace_key"]) for x in glob if _present(x.get("subspace_key"))}),
            "G": count_G(r, m) if 1 <= r <= m else None,
            "T": count_T(rs, m) if rs is not None and 1 <= rs <= m else None,
            "T_zero_loss": count_T_zero_loss(rs, m) if rs is not None and 1 <= rs <= m else None,
        })
    return rows


def families_frame(rows: list[dict]):
    """The catalogue as a table: ``runs_by_width`` and ``fraction_by_width`` spread into columns
    ``m<m>`` and ``fraction_m<m>`` (null for widths the teacher has no runs of)."""
    import pandas as pd

    ms = sorted({m for r in rows for m in r["runs_by_width"]})
    flat = []
    for r in rows:
        one = {k: v for k, v in r.items() if k not in ("runs_by_width", "fraction_by_width")}
        for m in ms:
            one[f"m{m}"] = r["runs_by_width"].get(m)
        for m in ms:
            one[f"fraction_m{m}"] = r["fraction_by_width"].get(m)
        flat.append(one)
    df = pd.DataFrame(flat, columns=_FAMILY_COLUMNS + [f"m{m}" for m in ms] + [f"fraction_m{m}" for m in ms])
    for m in ms:
        df[f"m{m}"] = df[f"m{m}"].astype("Int64")
    for c in ("teacher_index", "runs"):
        df[c] = df[c].astype("int64")
    for c in ("r_star", "family_width", "family_index", "family_nullity"):
        df[c] = df[c].astype("Int64")
    df["family_loss"] = df["family_loss"].astype("float64")
    return df


def symmetry_frame(rows: list[dict]):
    """The symmetry rows as a table (counts as exact integers; ``T`` and friends can exceed int64
    for wide students, and are then stored as strings)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=_SYMMETRY_COLUMNS)
    for c in ("G", "T", "T_zero_loss"):
        vals = df[c].tolist()
        if all(v is None or abs(v) < 2**63 for v in vals):
            df[c] = pd.array(vals, dtype="Int64")
        else:
            df[c] = [None if v is None else str(v) for v in vals]
    for c in ("r_star",):
        df[c] = df[c].astype("Int64")
    return df


_FAMILY_COLUMNS = ["teacher", "teacher_index", "r_star", "family", "family_key", "family_width", "family_loss",
                   "family_index", "family_nullity", "family_label", "consistent", "explanations", "family_kinds",
                   "runs"]
_SYMMETRY_COLUMNS = ["teacher", "teacher_index", "r_star", "m", "r", "runs", "global_runs", "families", "subspaces",
                     "global_subspaces", "G", "T", "T_zero_loss"]
