"""Shared helpers for the lossatlas benchmarks: environment record, thread limits, timing, JSON.

Import this module before numpy, JAX or torch: :func:`limit_threads` only works if it runs
before those libraries start their thread pools. Nothing here imports numpy, JAX or torch at
module level, so a PyTorch worker process can use it without pulling JAX in (and the other
way round).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: Root of the repository (the folder that holds ``benchmarks/``).
REPO = Path(__file__).resolve().parent.parent

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- threads
def limit_threads(n: int) -> dict[str, str]:
    """Limit BLAS/LAPACK, XLA and (later) torch to ``n`` threads; call before importing them.

    Sets ``OMP/OPENBLAS/MKL_NUM_THREADS``, for ``n == 1`` XLA's CPU flag that keeps Eigen's
    matrix products on one thread, and pins the process to the first ``n`` CPUs it may use
    (``os.sched_setaffinity``; inherited by the processes it starts). The pinning is what
    makes the limit true: XLA's CPU runtime also runs independent operations of one program
    concurrently on a thread pool sized by the machine, which no flag switches off (measured:
    an unpinned "one-thread" JAX HVP loop used 1.6 cores on this two-core machine). Torch reads
    its count at run time: workers call ``torch.set_num_threads(n)`` themselves. Returns the
    settings, for the record.
    """
    n = int(n)
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(cpus[:n]))
    return thread_settings()


def thread_settings() -> dict[str, object]:
    """The thread-related environment variables as they are now, and the CPUs the process may use."""
    rec: dict[str, object] = {v: os.environ.get(v, "") for v in (*_THREAD_VARS, "XLA_FLAGS")}
    if hasattr(os, "sched_getaffinity"):
        rec["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    return rec


# --------------------------------------------------------------------------- environment
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU model string from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (how busy the shared machine was)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment(packages=("jax", "jaxlib", "numpy", "scipy", "equinox", "torch", "pyhessian")):
    """A JSON-ready record of where a benchmark ran.

    Package versions come from the installed metadata, so recording ``torch`` does not import
    it into a JAX process. The git commit is ``HEAD`` plus a ``dirty`` flag for uncommitted
    changes (the benchmark may run before its own files are committed).
    """
    status = _git("status", "--porcelain")
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_start": load_average(),
        "packages": {p: _version(p) for p in packages},
        "lossatlas": _version("lossatlas"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "threads": thread_settings(),
        "argv": sys.argv,
    }


# --------------------------------------------------------------------------- timing
def block(x):
    """Wait for asynchronous results (JAX arrays, pytrees of them); return ``x``."""
    jax = sys.modules.get("jax")
    if jax is not None:
        return jax.block_until_ready(x)
    return x


def _calibrate(fn: Callable[[], object], min_time: float, max_number: int) -> int:
    """How many calls make one timed batch last at least ``min_time`` seconds."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            block(fn())
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= max_number:
            return number
        number = min(max_number, max(number * 2, int(number * min_time / max(dt, 1e-9)) + 1))


def summarize_times(times: list[float], number: int = 1) -> dict:
    """Median, min, max and all per-call times (seconds) of a list of batch timings."""
    per_call = [t / number for t in times]
    return {
        "median_s": statistics.median(per_call),
        "min_s": min(per_call),
        "max_s": max(per_call),
        "repeats": len(per_call),
        "calls_per_repeat": number,
        "times_s": per_call,
    }


def time_call(
    fn: Callable[[], object],
    *,
    repeats: int = 7,
    warmup: int = 1,
    number: int | None = None,
    min_time: float = 0.05,
    max_number: int = 10_000,
) -> dict:
    """Time ``fn()`` (results are blocked on, so JAX's async dispatch is included).

    ``warmup`` untimed calls first (JIT compilation, caches); then ``repeats`` batches of
    ``number`` calls each (calibrated so a batch lasts ``≥ min_time`` when not given).
    Returns :func:`summarize_times` of the per-call times; quote the median.
    """
    for _ in range(warmup):
        block(fn())
    if number is None:
        number = _calibrate(fn, min_time, max_number)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            block(fn())
        times.append(time.perf_counter() - t0)
    return summarize_times(times, number)


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 15,
    warmup: int = 1,
    min_time: float = 0.05,
    max_number: int = 10_000,
) -> dict[str, dict]:
    """Time several functions in alternation, so load changes on a shared machine hit all alike.

    Each function gets its own calibrated batch size; repeat ``r`` times every function once,
    in turn. Besides the per-function summaries, ``"paired_ratios"`` maps ``"a/b"`` to the
    median over repeats of the ratio of the two per-call times measured side by side (for
    every pair ``(a, b)`` with ``b`` the first function).
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            block(fns[name]())
    numbers = {n: _calibrate(fns[n], min_time, max_number) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        for n in names:
            f, k = fns[n], numbers[n]
            t0 = time.perf_counter()
            for _ in range(k):
                block(f())
            times[n].append((time.perf_counter() - t0) / k)
    out: dict[str, dict] = {n: summarize_times(times[n]) | {"calls_per_repeat": numbers[n]} for n in names}
    base = names[0]
    out["paired_ratios"] = {
        f"{n}/{base}": statistics.median(a / b for a, b in zip(times[n], times[base], strict=True)) for n in names[1:]
    }
    return out


def time_once(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall time of one blocked call and its result (for cold starts and long jobs)."""
    t0 = time.perf_counter()
    out = block(fn())
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- output
def write_json(path: str | os.PathLike, doc: dict) -> Path:
    """Write ``doc`` as indented JSON atomically (temporary file in the folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
