"""Running a sweep: batching, executors (in-process, local processes, dask), resume, progress.

Every run is keyed by a stable hash of its spec; the store marks a run done by its record, so
rerunning the same sweep after an interruption (Ctrl-C or ``kill -9``) computes only what is
missing. Worker processes enable JAX's 64-bit mode as their first action and exit when their
parent dies, so no orphan keeps computing a run that the next invocation will compute again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable

from .._errors import InputError
from ._spec import SweepSpec
from ._store import Store, write_json_atomic

EXECUTORS = ("local", "dask")


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: runs in total, already done before, computed now, failed."""

    total: int
    skipped: int
    computed: int
    failed: int
    wall_time: float
    executor: str
    workers: int

    def to_record(self) -> dict:
        return dataclasses.asdict(self)


def _configure_worker_jax(cache_dir: str | None) -> None:
    """Worker processes are the sweep's own: float64, and a persistent compilation cache shared
    by all workers of the sweep (each compiled shape is compiled once, not once per worker)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


#: Environment of worker processes: one compute thread each. With as many workers as cores, XLA's
#: and BLAS's own thread pools would only oversubscribe the cores (measured on the built-in atlas,
#: two workers on two cores: 44.5 s with default threading, 38.5 s with one thread each).
_WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@contextlib.contextmanager
def _worker_environment():
    """Set `_WORKER_ENV` while worker processes are spawned (they inherit it), then restore this
    process's environment. XLA flags the user set are kept and extended."""
    old = {k: os.environ.get(k) for k in _WORKER_ENV}
    try:
        for k, v in _WORKER_ENV.items():
            if k == "XLA_FLAGS" and old[k]:
                os.environ[k] = old[k] + " " + v
            elif old[k] is None or k == "XLA_FLAGS":
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init(cache_dir: str | None = None) -> None:
    """First action of a worker process: float64 JAX, and exit if the parent goes away."""
    _configure_worker_jax(cache_dir)
    parent = os.getppid()

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _run_batch_task(store_root: str, runs: list[dict], cache_dir: str | None = None, vmap_size: int | None = None):
    """Entry point for worker processes (dask or process pool) and for the in-process executor.

    `runs` share one shape. ``vmap_size=None`` runs them as given (one batch, vmapped if it holds
    more than one run); otherwise they run in chunks of `vmap_size` (1: one flow per run).
    """
    if cache_dir is not None:
        _configure_worker_jax(cache_dir)
    else:
        import jax

        jax.config.update("jax_enable_x64", True)
    from ._run import run_batch

    if vmap_size is None:
        return run_batch(store_root, runs)
    out = []
    for i in range(0, len(runs), vmap_size):
        out += run_batch(store_root, runs[i : i + vmap_size])
    return out


def _worker_tasks(pending: list[list[dict]], workers: int) -> list[list[dict]]:
    """Tasks for a pool of `workers` processes, in submission order.

    Each shape's runs are split into `workers` chunks; all first chunks go first (largest shape
    first, greedy longest-processing-time order), then all second chunks, and so on. Each shape is
    thus compiled once, by the worker that takes its first chunk, while the others are busy with
    other shapes; by the time a later chunk of that shape starts elsewhere, its compiled code is
    in the sweep's persistent compilation cache. The small chunks at the end balance the load.
    """
    groups: dict[str, list[dict]] = {}
    for b in pending:
        for r in b:
            groups.setdefault(_group_key(r), []).append(r)
    rounds: list[list[list[dict]]] = []
    for runs in sorted(groups.values(), key=_task_cost, reverse=True):
        n = min(workers, len(runs))
        size = -(-len(runs) // n)
        for i, start in enumerate(range(0, len(runs), size)):
            if len(rounds) <= i:
                rounds.append([])
            rounds[i].append(runs[start : start + size])
    return [t for rnd in rounds for t in rnd]


def _group_key(r: dict) -> str:
    import json

    return json.dumps(r["width"])


def _task_cost(runs: list[dict]) -> float:
    """A proxy for a task's run time: runs × network size."""
    w = runs[0]["width"]
    size = sum(w) if isinstance(w, list) else w
    return len(runs) * (1.0 + float(size))


def plan(spec: SweepSpec) -> list[list[dict]]:
    """Group the sweep's runs into batches of one shape (at most ``run.batch_size`` each)."""
    groups: dict[str, list[dict]] = {}
    for r in spec.runs():
        d = r.to_dict()
        d["run_id"] = r.run_id
        groups.setdefault(r.group, []).append(d)
    size = spec.run.batch_size if spec.run.batch else 1
    batches = []
    for runs in groups.values():
        for i in range(0, len(runs), size):
            batches.append(runs[i : i + size])
    return batches


def run_sweep(
    spec: SweepSpec,
    out,
    *,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> SweepSummary:
    """Run (or resume) the sweep into the folder `out`.

    **Arguments:**

    - `executor`: ``"local"`` (this process when ``workers == 1``, else a pool of spawned
      processes) or ``"dask"`` (a ``LocalCluster`` of `workers` processes, or the running
      scheduler at `scheduler`; failed tasks, e.g. on a worker that died, are retried).
    - `progress`: called as ``progress(done, failed, total)`` while the sweep runs.
    """
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if int(workers) < 1:
        raise InputError(f"workers must be >= 1, got {workers}.")
    if scheduler is not None and executor != "dask":
        raise InputError("--scheduler needs --executor dask.")
    t0 = time.perf_counter()
    store = Store(out, create=True)
    store.clean_temporaries()
    spec_path = store.root / "spec.json"
    doc = {"format": "lossatlas-sweep/1", "spec": spec.to_dict()}
    if spec_path.is_file():
        import json

        try:
            old = json.loads(spec_path.read_text())
        except json.JSONDecodeError:
            old = None
        if old is not None and old.get("spec") != doc["spec"]:
            raise InputError(f"{out} holds a different sweep ({old.get('spec', {}).get('experiment', '')}"
                             "); use another --out folder or delete it.")
    write_json_atomic(spec_path, doc)
    batches = plan(spec)
    total = sum(len(b) for b in batches)
    done_before = store.done_ids()
    pending = [[r for r in b if r["run_id"] not in done_before] for b in batches]
    pending = [b for b in pending if b]
    skipped = total - sum(len(b) for b in pending)

    def report():
        if progress is not None:
            recs = store.done_ids()
            failed = _count_failed(store)
            progress(len(recs & {r["run_id"] for b in batches for r in b}), failed, total)

    report()
    root = str(store.root)
    cache = str(store.root / ".jax_cache") if int(workers) > 1 or executor == "dask" else None
    vmap_size = spec.run.batch_size if spec.run.batch else 1
    if int(workers) > 1 or executor == "dask":
        pending = _worker_tasks(pending, int(workers))
    if executor == "local" and int(workers) == 1:
        for b in pending:
            _run_batch_task(root, b)
            report()
    elif executor == "local":
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(max_workers=int(workers), mp_context=mp.get_context("spawn"),
                                    initializer=_worker_init, initargs=(cache,)) as pool:
            with _worker_environment():  # the workers are spawned by the first submissions
                futs = [pool.submit(_run_batch_task, root, b, None, vmap_size) for b in pending]
            while futs:
                finished, futs = cf.wait(futs, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for f in finished:
                    f.result()
                report()
    else:
        _run_dask(root, pending, int(workers), scheduler, report, cache, vmap_size)
    report()
    computed = len(store.done_ids()) - len(done_before)
    return SweepSummary(total=total, skipped=skipped, computed=computed, failed=_count_failed(store),
                        wall_time=time.perf_counter() - t0, executor=executor, workers=int(workers))


def _count_failed(store: Store) -> int:
    import json

    n = 0
    for p in store.runs.glob("*.json"):
        try:
            if json.loads(p.read_text()).get("run_status") == "error":
                n += 1
        except (json.JSONDecodeError, OSError):
            pass
    return n


def _run_dask(root, pending, workers, scheduler, report, cache, vmap_size):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError('the dask executor needs dask.distributed: pip install "lossatlas[dask]".') from None
    cluster = None
    if scheduler is None:
        with _worker_environment():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise InputError(f"cannot reach the dask scheduler at {scheduler}: {e}") from None
    try:
        futures = [client.submit(_run_batch_task, root, b, cache, vmap_size, retries=5, pure=False)
                   for b in pending]
        ac = as_completed(futures)
        remaining = len(futures)
        while remaining:
            try:
                f = next(ac)
            except StopIteration:
                break
            f.result()
            remaining -= 1
            report()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
