"""``report.html`` and the PNG figures of a sweep folder, built from its stored results only.

The figures, summary rows and tables come from the sweep's experiment kind
(:class:`lossatlas.experiments.ExperimentKind`); this module lays them out in one self-contained
page that works offline (every script and style inline, the PNG figures inlined as ``data:`` URIs
and also kept as ``figures/*.png`` beside it): a summary in words, every figure with its caption (a
figure without data says why), an interactive overview of the runs, a sortable, filterable table
of runs, a per-run section (``#run-<run_id>``, drawn in the browser from an inlined JSON of
downsampled per-run arrays), the summary tables and the spec's fields that apply.

Opening the page with the fragment ``#selftest`` makes it exercise its own table (filters,
sorting, a per-run section) and write the outcome as JSON into ``#selftest-result``; the browser
test reads it back with ``chromium --headless --dump-dom``.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from pathlib import Path

import numpy as np

from .._errors import InputError
from ..data import atomic_path
from ..experiments import Figure, Store, Table, get_kind, spec_from_record
from ._assets import BOOT_JS, CSS, LABEL_COLORS, PAGE_JS

#: Figures of the teacher-student kind (one teacher; with several, ``families`` is one figure per
#: teacher, ``families_<label>``), and of the census kind (names of ``figures/*.png``).
FIGURES = ("global_fraction", "labels", "families", "symmetry", "spectra", "loss_time", "slices", "path")
CENSUS_FIGURES = ("census_fraction", "census_losses")

#: Columns of the runs table, in this order, when the kind's records have them: (field, header, type).
RUN_COLUMNS = (
    ("run_id", "run", "str"), ("teacher", "teacher", "str"), ("width", "width", "str"), ("seed", "seed", "num"),
    ("label", "label", "str"),
    ("loss", "loss", "num"), ("grad_norm_inf", "‖∇L‖∞", "num"), ("index", "index", "num"),
    ("nullity", "nullity", "num"), ("polish_method", "polish method", "str"), ("converged", "converged", "bool"),
    ("reduced_width", "reduced width", "num"), ("explanation", "explanation", "str"),
    ("family_width", "family width", "num"), ("continuation", "continuation", "str"),
    ("wall_time", "wall time (s)", "num"),
    ("run_status", "status", "str"),
)
#: Fields of a record shown in its per-run section under "reduction / family".
REDUCTION_FIELDS = ("teacher", "r_star", "reduced_width", "subspace_dim", "on_expansion_manifold",
                    "reduction_distance", "subspace_key", "reduction_error", "explanation", "family_key",
                    "family_width", "family_loss", "family_index", "family_nullity", "family_label",
                    "family_grad_norm_inf", "wide_width", "wide_index", "index_at_least_narrow", "merge_tol",
                    "explanation_error", "continuation", "branch", "branch_index", "codim", "dim", "morse_bott",
                    "family")
#: Figures drawn across the whole page width (the others two by two).
_WIDE_FIGURES = ("slices", "census_losses", "families")
#: Record fields never inlined (bulky or internal).
_SKIP_FIELDS = ("array_names",)


@dataclasses.dataclass(frozen=True)
class Report:
    """Where the report went: the HTML file and the figures (name → path), with the summary rows
    and the figures' captions; ``empty_figures`` names the figures drawn without data."""

    html: Path
    figures: dict[str, Path]
    summary: list[dict]
    captions: dict[str, str] = dataclasses.field(default_factory=dict)
    empty_figures: tuple[str, ...] = ()


def summary_table(df, spec) -> list[dict]:
    """The kind's summary rows of a gathered results table."""
    return get_kind(spec.kind).summary(df)


def build_report(folder) -> Report:
    """Write ``figures/*.png`` and ``report.html`` for the sweep in `folder`."""
    store = Store(folder)
    if not store.records():  # checked first: nothing is written for an empty folder
        raise InputError(f"{folder} holds no finished runs yet; run `lossatlas atlas` first.")
    doc = _read_json(store.root / "spec.json")
    if not doc or "spec" not in doc:
        raise InputError(f"{folder} has no readable spec.json; it is not a finished `lossatlas atlas` folder.")
    spec = spec_from_record(doc["spec"])
    df = store.table()
    kind = get_kind(spec.kind)
    figdir = store.root / "figures"
    figdir.mkdir(exist_ok=True)
    figs = kind.figures(store, df, spec, figdir)
    rows = kind.summary(df)
    extras = kind.extras(spec, store)
    tables = [kind.table(spec, rows), *kind.extra_tables(spec, extras)]
    records = sorted(store.records(), key=lambda r: (_width_key(r.get("width")), r.get("seed", 0), r["run_id"]))
    data = _page_data(store, records)
    page = _html(spec, kind, df, rows, tables, kind.extra_lines(extras), figs, store.root, data)
    out = store.root / "report.html"
    with atomic_path(out, ".html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return Report(out, {f.name: f.path for f in figs}, rows, {f.name: f.caption for f in figs},
                  tuple(f.name for f in figs if not f.has_data))


def _read_json(p: Path):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _width_key(w):
    try:
        return (0, int(w), "")
    except (TypeError, ValueError):
        return (1, 0, str(w))


# --------------------------------------------------------------------- inlined data
def _num(x, digits: int = 5):
    """A JSON-safe number rounded to `digits` significant digits (None for NaN/inf)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _nums(a, digits: int = 5) -> list:
    return [_num(v, digits) for v in np.asarray(a, dtype=float).ravel()]


def _scalar(v):
    """A record field as plain JSON (numbers finite or None, strings, booleans)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) < 2**53 else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return json.dumps(v, default=str)


def _budget(n_runs: int) -> tuple[int, int, int]:
    """(flow points, eigenvalues, slice grid side) per run: smaller for large sweeps so the page
    stays a few MB for 1000 runs."""
    if n_runs <= 100:
        return 160, 400, 25
    if n_runs <= 400:
        return 100, 200, 17
    return 60, 120, 13


def _flow(t, loss, grad, k: int) -> dict | None:
    t = np.asarray(t, dtype=float)
    if t.size < 2:
        return None
    pos = np.flatnonzero(t > 0)
    if pos.size < 2:
        return None
    grid = np.geomspace(t[pos[0]], t[-1], k)
    idx = np.unique(np.concatenate([pos[0] + np.searchsorted(t[pos], grid).clip(0, pos.size - 1), [t.size - 1]]))
    out = {"t": _nums(t[idx], 4), "loss": _nums(np.asarray(loss)[idx])}
    if grad is not None and np.asarray(grad).size == t.size:
        out["grad"] = _nums(np.asarray(grad)[idx], 4)
    return out


def _eigs(ev, k: int) -> dict | None:
    ev = np.sort(np.asarray(ev, dtype=float).ravel())
    if ev.size == 0:
        return None
    if ev.size <= k:
        return {"i": list(range(ev.size)), "v": _nums(ev), "n": int(ev.size)}
    edge = k // 4
    idx = np.unique(np.concatenate([np.arange(edge), np.linspace(edge, ev.size - edge - 1, k - 2 * edge).round(),
                                    np.arange(ev.size - edge, ev.size)]).astype(int))
    return {"i": idx.tolist(), "v": _nums(ev[idx]), "n": int(ev.size)}


def _slice(z, axis, side: int) -> dict | None:
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.size == 0:
        return None
    step = max(1, math.ceil(z.shape[0] / side))
    zs = z[::step, ::step]
    a = np.asarray(axis, dtype=float)[::step]
    lz = np.log10(np.maximum(zs - np.nanmin(z), 0.0) + 1e-16)
    return {"a": _nums(a, 4), "z": [_nums(row, 3) for row in lz], "min": _num(np.nanmin(z))}


def _page_data(store: Store, records: list[dict]) -> dict:
    """The runs (their scalar fields) and their downsampled arrays, for the page's script."""
    present = {k for r in records for k, v in r.items() if v is not None}  # a column of Nones is left out
    all_ok = all(r.get("run_status", "ok") == "ok" for r in records)
    one_teacher = len({r.get("teacher") for r in records}) <= 1
    columns = [{"key": k, "title": t, "type": ty} for k, t, ty in RUN_COLUMNS
               if k in present and not (k == "run_status" and all_ok) and not (k == "teacher" and one_teacher)]
    n_flow, n_eig, side = _budget(len(records))
    runs, arrays = [], {}
    for r in records:
        runs.append({k: _scalar(v) for k, v in r.items() if k not in _SKIP_FIELDS})
        if r.get("run_status", "ok") != "ok":
            continue
        a = store.arrays(r["run_id"])
        one = {}
        if "flow_t" in a and "flow_loss" in a:
            one["flow"] = _flow(a["flow_t"], a["flow_loss"], a.get("flow_grad"), n_flow)
        if "eigenvalues" in a:
            one["eig"] = _eigs(a["eigenvalues"], n_eig)
        for key in ("slice_eig", "slice_random"):
            if key in a and key + "_axis" in a:
                one[key] = _slice(a[key], a[key + "_axis"], side)
        one = {k: v for k, v in one.items() if v is not None}
        if one:
            arrays[r["run_id"]] = one
    return {"columns": columns, "runs": runs, "arrays": arrays, "labelColors": LABEL_COLORS,
            "reductionFields": list(REDUCTION_FIELDS)}


def _json_script(obj) -> str:
    """JSON safe inside ``<script type="application/json">``."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


# --------------------------------------------------------------------- the page
def _table_html(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    return f"<h3>{e(t.title)}</h3><table class='summary'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary_words(spec, kind, df, rows: list[dict], lines: list[str], figs: list[Figure]) -> list[str]:
    """The opening paragraphs: what ran, the headline numbers, what failed and why."""
    e = html.escape
    n = len(df)
    ok = df[df["run_status"] == "ok"] if "run_status" in df else df
    failed = n - len(ok)
    widths = sorted({str(w) for w in df["width"]}, key=_width_key) if "width" in df else []
    teachers = spec.teacher_specs() if spec.teachers else ()
    if teachers:
        what = f"{_plural(len(teachers), 'teacher')} (" + "; ".join(
            f"{e(label)}: r* = {sub.teacher.width}, m = {e(', '.join(str(m) for m in sub.student.widths))} × "
            f"{_plural(sub.run.seeds, 'seed')}" for label, sub in teachers) + ")"
    else:
        what = f"{_plural(len(widths), 'width')} ({e(', '.join(widths))}) × {_plural(spec.run.seeds, 'seed')}"
    out = [f"<p><b>{_plural(n, 'run')}</b> of the <code>{e(kind.name)}</code> kind ({e(kind.title)}): "
           f"{what}. "
           f"<b>{len(ok)} finished</b>"
           + (f", <b class='bad'>{failed} failed</b>.</p>" if failed else ", none failed.</p>")]
    if failed and "error" in df:
        errs = df.loc[df["run_status"] != "ok", "error"].astype(str).value_counts().head(3)
        out.append("<p>What failed: " + "; ".join(f"<code>{e(k)}</code> ({v}×)" for k, v in errs.items())
                   + ". Each failed run's traceback is in its section of the runs table.</p>")
    heads = []
    if rows and all("global_fraction" in r and "runs" in r for r in rows):
        per = ", ".join((f"{e(str(r['teacher']))} " if teachers and "teacher" in r else "")
                        + f"m = {e(str(r['width']))}: {round(r['global_fraction'] * (r['runs'] - r.get('failed', 0)))}"
                        f"/{r['runs'] - r.get('failed', 0)}" for r in rows)
        heads.append(f"Global minima reached per width: {per}.")
    if "label" in ok and len(ok):
        counts = ok["label"].value_counts()
        heads.append("End-point labels: " + ", ".join(
            f"<i class='dot' style='background:{LABEL_COLORS.get(str(k), '#555')}'></i>{e(str(k).replace('_', ' '))} "
            f"<b>{v}</b>" for k, v in counts.items()) + ".")
    if "explanation" in ok and len(ok):
        kinds = ok["explanation"].fillna("none (not critical)").astype(str).value_counts()
        heads.append("Explanations of the end points: " + ", ".join(
            f"{e(str(k).replace('_', ' '))} <b>{v}</b>" for k, v in kinds.items()) + ".")
    if "converged" in ok and len(ok):
        conv = int(ok["converged"].astype(bool).sum())
        words = (f"{conv} of {len(ok)} end points converged (‖∇L‖∞ ≤ max(gtol, round-off floor))")
        if conv < len(ok) and "polish_status" in ok:
            st = ok.loc[~ok["converged"].astype(bool), "polish_status"].astype(str).value_counts()
            words += "; the others stopped with " + ", ".join(f"{e(k)} ({v}×)" for k, v in st.items())
        heads.append(words + ".")
    if "grad_norm_inf" in ok and len(ok):
        g = ok["grad_norm_inf"].astype(float)
        heads.append(f"Largest ‖∇L‖∞ at an end point: {g.max():.1e} (median {g.median():.1e}).")
    if "wall_time" in ok and len(ok):
        heads.append(f"Total compute {ok['wall_time'].astype(float).sum():.1f} s "
                     f"(median {ok['wall_time'].astype(float).median():.2f} s per run).")
    if heads:
        out.append("<ul class='heads'>" + "".join(f"<li>{h}</li>" for h in heads) + "</ul>")
    out += [f"<p>{e(line)}</p>" for line in lines]
    empty = [f.name for f in figs if not f.has_data]
    if empty:
        out.append("<p><span class='bad'>Figures without data: " + ", ".join(e(x) for x in empty)
                   + "</span> (their captions say why).</p>")
    return out


def _spec_rows(spec, kind) -> dict[str, str]:
    student = spec.to_dict()["student"]
    widths = student["widths"] if "widths" in student else {"widths_relative": student["widths_relative"]}
    applies = {"name": spec.name, "kind": spec.kind, "widths": json.dumps(widths),
               "seeds per width": f"{spec.run.seeds} (from {spec.run.first_seed})"}
    subs = spec.teacher_specs() if spec.teachers else (("", spec),)
    for label, sub in subs:
        for table, fields in kind.run_key(sub).items():
            if label and table in ("teacher", "data"):
                continue
            for k, v in fields.items():
                applies[f"{table}.{k}"] = json.dumps(v) if isinstance(v, list | dict) else str(v)
    for label, sub in subs if spec.teachers else ():
        d = sub.to_dict()
        applies[f"teacher {label}"] = json.dumps({**d["teacher"], "widths": list(sub.student.widths),
                                                 "seeds": sub.run.seeds, "data": d["data"]})
    return applies


def _figure_html(f: Figure, root: Path) -> str:
    e = html.escape
    try:
        rel = f.path.relative_to(root).as_posix()
    except ValueError:
        rel = f.path.name
    try:
        src = "data:image/png;base64," + base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    except OSError:
        src = rel
    cls = "" if f.has_data else " class='nodata'"
    flag = "" if f.has_data else "<b class='bad'>No data.</b> "
    wide = " class='wide'" if f.name.split("_")[0] in _WIDE_FIGURES or f.name in _WIDE_FIGURES else ""
    return (f"<figure id='fig-{e(f.name)}'{wide} data-figure='{e(f.name)}' data-has-data='{int(f.has_data)}'>"
            f"<img src='{src}' alt='{e(f.name)}' loading='eager'>"
            f"<figcaption{cls}><b>{e(f.name.replace('_', ' '))}.</b> {flag}{e(f.caption)} "
            f"<a class='png' href='{e(rel)}'>{e(rel)}</a></figcaption></figure>")


def _html(spec, kind, df, rows, tables: list[Table], lines: list[str], figs: list[Figure], root: Path,
          data: dict) -> str:
    e = html.escape
    words = _summary_words(spec, kind, df, rows, lines, figs)
    applies = _spec_rows(spec, kind)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>lossatlas: {e(spec.name)}</title><style>{CSS}</style>",
        f"<script>{BOOT_JS}</script></head><body>",
        "<nav><b>lossatlas</b> <a href='#summary'>summary</a> <a href='#figures'>figures</a> "
        "<a href='#overview'>runs at a glance</a> <a href='#runs'>runs</a> <a href='#tables'>tables</a> "
        "<a href='#spec'>spec</a></nav><main>",
        f"<h1>{e(spec.name)} <small>lossatlas atlas · {e(kind.name)}</small></h1>",
        "<section id='summary'><h2>Summary</h2>", *words, "</section>",
        "<section id='figures'><h2>Figures</h2><div class='figs'>", *[_figure_html(f, root) for f in figs],
        "</div></section>",
        "<section id='overview'><h2>Runs at a glance</h2><div id='overview-plot' class='plot'></div>"
        "<p class='caption'>Final loss of every run (log scale; losses ≤ 1e-32, including round-off "
        "negatives, are drawn at 1e-32), per width, coloured by label. Hover a point to see its run, click it "
        "to open the run's section. The filters of the runs table apply here too.</p></section>",
        "<section id='runs'><h2>Runs</h2><div id='run-filters' class='filters'></div>"
        "<div class='tablewrap'><table id='runs-table' class='runs'><thead></thead><tbody></tbody></table></div>"
        "<p class='caption'>Click a header to sort (again to reverse); click a run id for its flow, spectrum, "
        "slices and reduction.</p><div id='run-detail'></div></section>",
        "<section id='tables'><h2>Tables</h2>", *[_table_html(t) for t in tables], "</section>",
        "<section id='spec'><h2>Spec (the fields that apply)</h2><table class='spec'>",
        *[f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in applies.items()],
        "</table></section></main>",
        "<div id='tooltip' hidden></div><pre id='selftest-result' hidden></pre>",
        f"<script type='application/json' id='lossatlas-data'>{_json_script(data)}</script>",
        f"<script>{PAGE_JS}</script></body></html>",
    ]
    return "\n".join(parts)
