"""``report.html`` and the PNG figures of a sweep folder, built from its stored results only.

The figures, summary rows and tables come from the sweep's experiment kind
(:class:`lossatlas.experiments.ExperimentKind`); this module lays them out in one page: a summary
in words, the spec's fields that apply, the summary table, sweep-level tables, and every figure
with a caption (a figure without data says why).
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

from .._errors import InputError
from ..data import atomic_path
from ..experiments import Figure, Store, Table, get_kind, spec_from_record

#: Figures of the teacher-student kind, and of the census kind (names of ``figures/*.png``).
FIGURES = ("global_fraction", "labels", "symmetry", "spectra", "loss_time", "slices", "path")
CENSUS_FIGURES = ("census_fraction", "census_losses")


@dataclasses.dataclass(frozen=True)
class Report:
    """Where the report went: the HTML file and the figures (name → path), with the summary rows
    and the figures' captions."""

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
    doc = _read_json(store.root / "spec.json")
    if not doc or "spec" not in doc:
        raise InputError(f"{folder} has no readable spec.json; it is not a finished `lossatlas atlas` folder.")
    spec = spec_from_record(doc["spec"])
    df = store.table()
    if df.empty:
        raise InputError(f"{folder} holds no finished runs yet; run `lossatlas atlas` first.")
    kind = get_kind(spec.kind)
    figdir = store.root / "figures"
    figdir.mkdir(exist_ok=True)
    figs = kind.figures(store, df, spec, figdir)
    rows = kind.summary(df)
    extras = kind.extras(spec, store)
    tables = [kind.table(spec, rows), *kind.extra_tables(spec, extras)]
    page = _html(spec, kind, df, tables, kind.extra_lines(extras), figs, store.root)
    out = store.root / "report.html"
    with atomic_path(out, ".html") as tmp:
        Path(tmp).write_text(page)
    return Report(out, {f.name: f.path for f in figs}, rows, {f.name: f.caption for f in figs},
                  tuple(f.name for f in figs if not f.has_data))


def _read_json(p: Path):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, json.JSONDecodeError):
        return None


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1050px;margin:auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "th{background:#f4f4f4}figure{margin:1.5em 0}figcaption{font-size:13px;color:#444;max-width:900px}"
        "img{max-width:100%}.nodata{color:#a33}")


def _table_html(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    return f"<h3>{e(t.title)}</h3><table><tr>{head}</tr>{body}</table>"


def _html(spec, kind, df, tables: list[Table], lines: list[str], figs: list[Figure], root: Path) -> str:
    e = html.escape
    n = len(df)
    failed = int((df["run_status"] != "ok").sum()) if "run_status" in df else 0
    words = f"{n} runs of the {e(kind.name)} kind ({e(kind.title)}); {n - failed} finished, {failed} failed."
    if failed and "error" in df:
        errs = df.loc[df["run_status"] != "ok", "error"].astype(str).value_counts().head(3)
        words += " Errors: " + "; ".join(f"{e(k)} ({v}×)" for k, v in errs.items()) + "."
    applies = {"name": spec.name, "kind": spec.kind, "widths": json.dumps(spec.to_dict()["student"]["widths"]),
               "seeds per width": f"{spec.run.seeds} (from {spec.run.first_seed})"}
    key = kind.run_key(spec)
    for table, fields in key.items():
        for k, v in fields.items():
            applies[f"{table}.{k}"] = json.dumps(v) if isinstance(v, list | dict) else str(v)
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>lossatlas: {e(spec.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>lossatlas atlas: {e(spec.name)}</h1>", f"<p>{words}</p>"]
    parts += [f"<p>{e(line)}</p>" for line in lines]
    parts.append("<h2>Summary</h2>")
    parts += [_table_html(t) for t in tables]
    parts.append("<h2>Figures</h2>")
    for f in figs:
        rel = f.path.relative_to(root)
        cls = "" if f.has_data else " class='nodata'"
        parts.append(f"<figure id='{e(f.name)}'><img src='{e(str(rel))}' alt='{e(f.name)}'>"
                     f"<figcaption{cls}><b>{e(f.name)}.</b> {e(f.caption)}</figcaption></figure>")
    parts.append("<h2>Spec (the fields that apply)</h2><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in applies.items()]
    parts.append("</table></body></html>")
    return "\n".join(parts)
