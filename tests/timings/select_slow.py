"""Choose the tests that leave the default run: ``python tests/timings/select_slow.py JUNIT.xml``.

The default suite must finish in under 5 minutes on 2 quiet cores (README). Most of its time is
XLA compilation, spread over a few dozen heavy tests, so the split is measured, not guessed:

1. run the whole default suite on a quiet 2-core machine with a cold compile cache and a JUnit
   report (``LOSSATLAS_TEST_JAX_CACHE=$(mktemp -d) python -m pytest --junitxml=JUNIT.xml``);
2. this script writes ``tests/timings/slow.txt``: every test that took longer than
   ``--threshold`` seconds (default 3), except those in ``tests/timings/keep.txt`` (one or more
   heavy tests per capability that the default run must keep: the end-to-end atlas, the
   published census data, polish to machine precision, ...), with its measured time;
3. ``tests/conftest.py`` marks every node id in ``slow.txt`` ``slow``: it runs with ``-m slow``
   (and in the full run ``-m ''``), like the tests marked ``@pytest.mark.slow`` in the source.

Tests already marked slow are not in the JUnit report and keep their mark.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent


def node_id(classname: str, name: str) -> str:
    return classname.replace(".", "/") + ".py::" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("junit", type=Path)
    ap.add_argument("--threshold", type=float, default=3.0)
    args = ap.parse_args()
    keep = {ln.split("#")[0].strip() for ln in (HERE / "keep.txt").read_text().splitlines()} - {""}
    rows = [(float(tc.get("time")), node_id(tc.get("classname"), tc.get("name")))
            for tc in ET.parse(args.junit).iter("testcase")]
    ids = {n for _, n in rows}
    missing = keep - ids
    if missing:
        raise SystemExit(f"keep.txt names tests that did not run: {sorted(missing)}")
    slow = {n: f"{d:.1f} s" for d, n in rows if d > args.threshold and n not in keep}
    # tests already in slow.txt did not run (they are marked slow): they stay, with their old time
    old = HERE / "slow.txt"
    if old.exists():
        for ln in old.read_text().splitlines():
            nid, _, note = ln.partition("#")
            nid = nid.strip()
            if nid and nid not in ids and nid not in keep:
                slow[nid] = note.strip()
    kept = sum(d for d, n in rows if n not in slow)
    n_default = sum(1 for _, n in rows if n not in slow)
    lines = [f"# Written by tests/timings/select_slow.py from {args.junit.name}: tests over {args.threshold:g} s",
             "# (quiet 2 cores, cold compile cache) leave the default run; measured seconds after each id.",
             f"# Default run after the split: {n_default} tests, {kept:.0f} s of test time.",
             *(f"{n}  # {note}" for n, note in sorted(slow.items()))]
    (HERE / "slow.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(slow)} tests in slow.txt; the default run keeps {n_default} tests, {kept:.0f} s")


if __name__ == "__main__":
    main()
