"""The report of a tiny teacher-student sweep: every figure has data, the page is self-contained,
and in headless Chromium it renders without console errors, with every figure, the runs table,
working filters and sorting, and a per-run section.

The browser part uses no Python dependency: ``chromium --headless --dump-dom`` opens
``report.html#selftest``; the page's own self-test drives its filters, sorting and a per-run
section and writes what it saw as JSON into ``#selftest-result``, which is compared here with the
counts computed from the store. Without a Chromium the browser test skips, saying so.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections import Counter

import pytest

from helpers import TINY_SWEEP
from lossatlas.cli import main
from lossatlas.experiments import Store
from lossatlas.report import FIGURES, build_report

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    spec = root / "tiny.toml"
    spec.write_text(TINY_SWEEP.format(seeds=2))
    out = root / "out"
    assert main(["atlas", str(spec), "--out", str(out), "--json"]) == 0
    return out


def _label(r):
    return r["label"] if r.get("label") is not None else ("error" if r.get("run_status") != "ok" else "—")


def test_every_figure_has_data_and_the_page_is_self_contained(sweep):
    rep = build_report(sweep)
    assert set(rep.figures) == set(FIGURES)
    assert rep.empty_figures == (), f"figures without data: {rep.empty_figures} ({rep.captions})"
    assert all(rep.captions[name] for name in FIGURES)
    assert len(rep.summary) == 3
    page = rep.html.read_text()
    # offline: no script, style, image or link from the network
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page)
    assert "<link" not in page
    # every figure is inlined, and its PNG is linked beside the page
    for name in FIGURES:
        assert f"id='fig-{name}'" in page and f"figures/{name}.png" in page
    assert page.count("data:image/png;base64,") == len(FIGURES)
    # the inlined runs are the store's runs
    data = json.loads(re.search(r"<script type='application/json' id='lossatlas-data'>(.*?)</script>", page,
                                re.S).group(1).replace("<\\/", "</"))
    recs = Store(sweep).records()
    assert sorted(r["run_id"] for r in data["runs"]) == sorted(r["run_id"] for r in recs)
    for r in recs:
        a = data["arrays"][r["run_id"]]
        assert {"flow", "eig", "slice_eig", "slice_random"} <= set(a)
        assert a["eig"]["n"] == r["n_params"]


def _chromium():
    env = os.environ.get("LOSSATLAS_CHROMIUM")
    if env:
        return env
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_in_headless_chromium(sweep, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium: install chromium-headless-shell or chromium (apt-get install "
                    "chromium-headless-shell), or set LOSSATLAS_CHROMIUM to a Chromium binary")
    rep = build_report(sweep)
    url = rep.html.resolve().as_uri() + "#selftest"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"console messages: {console}"
    m = re.search(r'<pre id="selftest-result"[^>]*data-done="1"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert m, "the page's self-test did not finish:\n" + proc.stdout[-2000:]
    got = json.loads(html.unescape(m.group(1)))
    assert got["errors"] == []

    recs = Store(sweep).records()
    labels = Counter(_label(r) for r in recs)
    widths = Counter(str(r["width"]) for r in recs)
    # every figure is present, drawn (the image decoded) and captioned
    assert set(got["figures"]) == set(FIGURES)
    for name, f in got["figures"].items():
        assert f["loaded"] and f["has_data"], name
        assert len(f["caption"]) > 40, name
    # the runs table: one row per run; each label / width filter shows exactly its runs
    assert got["runs_total"] == got["rows"] == got["rows_after_reset"] == len(recs)
    assert {"run_id", "width", "seed", "label", "loss", "grad_norm_inf", "index", "polish_method", "converged",
            "wall_time"} <= set(got["columns"])
    assert got["label_counts"] == dict(labels)
    assert got["label_rows_match"] is True
    assert got["width_counts"] == dict(widths)
    # the overview plot shows every run, and follows the label filter
    assert got["overview_points"] == len(recs)
    for lab, n in labels.items():
        assert got[f"overview_points_{lab}"] == n
    # sorting by clicking the loss header, then again to reverse
    assert got["sort"] == {"key": "loss", "ascending": True, "descending": True}
    # the first row (largest loss after the reverse sort) links to its section, drawn on demand
    sec = got["run_section"]
    first = max(recs, key=lambda r: r["loss"])
    assert sec["id"] == f"run-{first['run_id']}" and sec["exists"] and sec["link"]
    assert sec["flow_paths"] == 2  # loss and ‖∇L‖∞ along the flow
    assert sec["spectrum_points"] == first["n_params"]
    assert sec["heatmaps"] == 2
