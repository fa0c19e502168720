"""``lossatlas atlas`` (the main job: a resumable sweep, then its report) and ``lossatlas report``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from ._common import emit_json


def atlas(
    spec: Annotated[Path | None, typer.Argument(help="sweep spec (.toml); default: the built-in atlas")] = None,
    out: Annotated[Path, typer.Option(help="result folder (created; rerun to resume)")] = Path("atlas-results"),
    executor: Annotated[str, typer.Option(help="local | dask")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="dask scheduler address (with --executor dask)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    no_report: Annotated[bool, typer.Option("--no-report", help="skip report.html and figures")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed",
                                               help="compute again the runs stored as failed")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Run a sweep of flow-then-polish runs (resumable), classify, reduce and explain every end
    point, and build report.html with figures. With no spec: erf teacher of width 3, students of
    widths 3-6, population loss, 20 seeds per width. Teacher-student sweeps also write the family
    catalogue (families.parquet) and the symmetry table (symmetry.parquet), per teacher."""
    from ..experiments import EXECUTORS, default_spec, finish_sweep, get_kind, load_spec, run_sweep
    from ..report import build_report

    if executor not in EXECUTORS:
        raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}.")
    if scheduler is not None and executor != "dask":
        raise InputError("--scheduler needs --executor dask.")
    sp = default_spec() if spec is None else load_spec(spec)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder.")
    if not out.parent.resolve().is_dir():
        raise InputError(f"cannot create {out}: its parent folder does not exist.")
    bar = _progress_bar()
    task = None

    def update(done, failed, total):  # the bar starts with the first report (after every check)
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("runs", total=total)
        bar.update(task, completed=done, total=total,
                   description=f"runs: {done}/{total} done, {failed} failed, {total - done} remaining")

    try:
        summary = run_sweep(sp, out, executor=executor, workers=workers, scheduler=scheduler, progress=update,
                            retry_failed=retry_failed)
    except BaseException:
        _drop_bar(bar)  # the error is the one line on stderr
        raise
    if task is not None:
        bar.stop()
    from ..experiments import Store

    store = Store(out)
    df = store.gather()
    done = finish_sweep(sp, store)
    extras, exports = done["extras"], done["exports"]
    report = None if no_report else build_report(out)
    kind = get_kind(sp.kind)
    rows = kind.summary(df)
    body = {"out": str(out), "kind": sp.kind, "sweep": summary.to_record(), "summary": rows,
            "path": extras.get("path"), "report": None if report is None else str(report.html),
            "figures": {} if report is None else {k: str(v) for k, v in report.figures.items()},
            "results": str(Path(out) / "results.parquet"),
            "tables": {name: str(Path(out) / f"{name}.parquet") for name in ("families", "symmetry")
                       if name in extras},
            "families": extras.get("families"), "symmetry": extras.get("symmetry"),
            "exports": {k: str(v) for k, v in exports.items() if not k.startswith("endpoint:")},
            "endpoints": str(Path(out) / "endpoints") if any(k.startswith("endpoint:") for k in exports) else None}
    if json_out:
        emit_json("atlas", body)
        return
    _print_summary(kind, sp, summary, rows, extras, report)
    _print_sweep_notes(summary)


def _print_sweep_notes(summary) -> None:
    """Runs quarantined or failed earlier: one line each on stdout, after the table."""
    if summary.quarantined:
        sys.stdout.write(f"quarantined {len(summary.quarantined)} invalid run record(s) "
                         f"({', '.join(summary.quarantined)}) into {summary.quarantine_dir}; computed again\n")
    if summary.retired:
        sys.stdout.write(f"moved {len(summary.retired)} run record(s) of an older run format into "
                         f"{summary.quarantine_dir}; their runs were computed again under the current format\n")
    if summary.failed_before:
        what = "computed again (--retry-failed)" if summary.retried else "kept; rerun with --retry-failed to retry"
        sys.stdout.write(f"{summary.failed_before} run(s) had failed earlier: {what}\n")


def _drop_bar(bar) -> None:
    """Stop the progress bar without leaving a line: erased on a terminal, not printed otherwise."""
    if not bar.live.is_started:
        return  # stopping a bar never started prints an empty line
    if bar.console.is_terminal:
        bar.live.transient = True
    else:
        bar.console.quiet = True
    bar.stop()


def report(
    folder: Annotated[Path, typer.Argument(help="a sweep folder written by `lossatlas atlas`")],
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Build report.html and the PNG figures from stored results only (no recomputation)."""
    from ..report import build_report

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder.")
    from ..experiments import Store

    store = Store(folder)
    if not store.is_locked():  # a running sweep's temporaries are not leftovers
        store.clean_temporaries()
    rep = build_report(folder)
    body = {"report": str(rep.html), "figures": {k: str(v) for k, v in rep.figures.items()},
            "summary": rep.summary}
    if json_out:
        emit_json("report", body)
    else:
        sys.stdout.write(f"report: {rep.html}\n")
        for k, v in rep.figures.items():
            sys.stdout.write(f"  {k}: {v}\n")


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=Console(file=sys.stderr), transient=False)


def _print_summary(kind, sp, summary, rows, extras, report):
    from rich.console import Console
    from rich.table import Table

    con = Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 110))
    for i, t in enumerate([kind.table(sp, rows), *kind.extra_tables(sp, extras)]):
        title = t.title
        if i == 0:
            title = (f"lossatlas atlas: {t.title} ({summary.total} runs; {summary.computed} computed, "
                     f"{summary.skipped} resumed, {summary.failed} failed; {summary.wall_time:.1f} s)")
        rt = Table(title=title)
        for c in t.columns:
            rt.add_column(c)
        for r in t.rows:
            rt.add_row(*r)
        con.print(rt)
    for line in kind.extra_lines(extras):
        con.print(line, markup=False, highlight=False)
    if report is not None:
        con.print(f"report: {report.html}", markup=False, highlight=False)


def register(app) -> None:
    app.command("atlas")(atlas)
    app.command("report")(report)
