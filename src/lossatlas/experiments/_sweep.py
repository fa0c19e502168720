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
from pathlib import Path

from .._errors import InputError
from ._registry import get_kind
from ._spec import RunSpec, SweepSpec
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
    failed_before: int = 0  # runs whose stored record was an error when the sweep started
    retried: int = 0  # of those, computed again (``retry_failed``)
    quarantined: tuple[str, ...] = ()  # run ids whose stored files were invalid (moved aside)
    quarantine_dir: str | None = None
    retired: tuple[str, ...] = ()  # run ids of valid records that are no run of this spec (an older
    # record format of the kind, whose runs now have other ids): moved aside into quarantine_dir

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


def _worker_env() -> dict[str, str]:
    """`_WORKER_ENV` as applied to this process's environment: XLA flags the user set are kept
    and extended; thread counts the user set are kept."""
    env = {}
    for k, v in _WORKER_ENV.items():
        old = os.environ.get(k)
        if k == "XLA_FLAGS":
            env[k] = v if not old else old if v in old else old + " " + v
        else:
            env[k] = v if old is None else old
    return env


def _pin_threads() -> None:
    """Make sure this process computes with the sweep's thread settings (first action of every
    task, also on dask workers started by others or restarted after a crash).

    XLA reads its flags when its backend starts: they are set now if it has not; a process
    whose backend already runs with other flags is refused (its results would differ in the
    last bits). BLAS pools are limited to one thread at run time when threadpoolctl is there.
    """
    want = _WORKER_ENV["XLA_FLAGS"]
    flags = os.environ.get("XLA_FLAGS", "")
    if want not in flags:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            raise RuntimeError(f"this worker's JAX runs without the sweep's thread settings; start "
                               f"the worker with XLA_FLAGS='{want}'.")
        os.environ["XLA_FLAGS"] = (flags + " " + want).strip()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the environment variables set at spawn then apply
        return
    threadpool_limits(1)


@contextlib.contextmanager
def _worker_environment():
    """Set `_WORKER_ENV` while worker processes are spawned (they inherit it), then restore this
    process's environment. XLA flags the user set are kept and extended."""
    old = {k: os.environ.get(k) for k in _WORKER_ENV}
    try:
        os.environ.update(_worker_env())
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


def _run_batch_task(store_root: str, runs: list[RunSpec], cache_dir: str | None = None,
                    vmap_size: int | None = None):
    """Entry point for worker processes (dask or process pool) and for the in-process executor.

    `runs` share one shape. ``vmap_size=None`` runs them as given (one batch, vmapped if it holds
    more than one run); otherwise they run in chunks of `vmap_size` (1: one flow per run).
    """
    _pin_threads()
    if cache_dir is not None:
        _configure_worker_jax(cache_dir)
    else:
        import jax

        jax.config.update("jax_enable_x64", True)
    from ._execute import run_group

    if vmap_size is None:
        return run_group(store_root, runs)
    out = []
    for i in range(0, len(runs), vmap_size):
        out += run_group(store_root, runs[i : i + vmap_size])
    return out


def _worker_tasks(pending: list[list[RunSpec]], workers: int) -> list[list[RunSpec]]:
    """Tasks for a pool of `workers` processes, in submission order.

    Each shape's runs are split into `workers` chunks; all first chunks go first (largest shape
    first, greedy longest-processing-time order), then all second chunks, and so on. Each shape is
    thus compiled once, by the worker that takes its first chunk, while the others are busy with
    other shapes; by the time a later chunk of that shape starts elsewhere, its compiled code is
    in the sweep's persistent compilation cache. The small chunks at the end balance the load.
    """
    groups: dict[str, list[RunSpec]] = {}
    for b in pending:
        for r in b:
            groups.setdefault(r.group, []).append(r)
    rounds: list[list[list[RunSpec]]] = []
    for runs in sorted(groups.values(), key=_task_cost, reverse=True):
        n = min(workers, len(runs))
        size = -(-len(runs) // n)
        for i, start in enumerate(range(0, len(runs), size)):
            if len(rounds) <= i:
                rounds.append([])
            rounds[i].append(runs[start : start + size])
    return [t for rnd in rounds for t in rnd]


def _task_cost(runs: list[RunSpec]) -> float:
    """A proxy for a task's run time: runs × network size."""
    w = runs[0].width
    size = sum(w) if isinstance(w, tuple) else w
    return len(runs) * (1.0 + float(size))


def plan(spec: SweepSpec) -> list[list[RunSpec]]:
    """Group the sweep's runs into batches of one shape (at most ``run.batch_size`` each)."""
    groups: dict[str, list[RunSpec]] = {}
    for r in get_kind(spec.kind).runs(spec):
        groups.setdefault(r.group, []).append(r)
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
    retry_failed: bool = False,
) -> SweepSummary:
    """Run (or resume) the sweep into the folder `out`.

    **Arguments:**

    - `executor`: ``"local"`` (a pool of `workers` spawned processes, at most one per core) or
      ``"dask"`` (a ``LocalCluster`` of `workers` processes, or the running scheduler at
      `scheduler`; failed tasks, e.g. on a worker that died, are retried). Every executor runs
      each run in a worker process with the same single-thread settings (`_WORKER_ENV`), so a
      run's record does not depend on the executor or on how often the sweep was resumed.
    - `progress`: called as ``progress(done, failed, total)`` while the sweep runs.
    - `retry_failed`: compute again the runs whose stored record is an error (by default they
      count as done; the summary says how many failed earlier).

    Everything is checked before anything is written (the executor, the folder, the spec
    against one already in the folder, the dask scheduler). The sweep then holds the folder's
    lock (:meth:`Store.lock`): a second sweep on the same folder is refused. A stored run counts
    as done only if its record and arrays validate; invalid ones are moved to
    ``quarantine/`` (named in the summary) and computed again. Valid records that are no run of
    the spec (the spec is the folder's own, so they come from an older record format of the
    kind, :attr:`ExperimentKind.run_format`) are moved there too (``retired`` in the summary).
    """
    _check_executor(executor, workers, scheduler)
    _check_out_folder(out)
    doc = {"format": "lossatlas-sweep/1", "spec": spec.to_dict()}
    _check_same_sweep(out, doc)
    batches = plan(spec)
    total = sum(len(b) for b in batches)
    all_ids = {r.run_id for b in batches for r in b}
    t0 = time.perf_counter()
    client = cluster = None
    if executor == "dask":  # reach the scheduler before writing anything
        client, cluster = _dask_client(int(workers), scheduler)
    try:
        store = Store(out, create=True)
        with store.lock():
            store.clean_temporaries()
            _check_same_sweep(out, doc)  # again, now that no other sweep can write the folder
            write_json_atomic(store.root / "spec.json", doc)
            valid, invalid = store.scan()
            retired = {run_id: "a record of an older run format: not a run of this spec (its run is "
                       "computed again under the current format)" for run_id in sorted(valid - all_ids)}
            valid -= set(retired)
            qdir = store.quarantine({**invalid, **retired})
            failed_ids = _failed_ids(store, valid & all_ids)
            if retry_failed:
                for run_id in failed_ids:
                    store.remove(run_id)
                valid -= failed_ids
            done_before = valid & all_ids
            pending = [[r for r in b if r.run_id not in done_before] for b in batches]
            pending = [b for b in pending if b]
            skipped = total - sum(len(b) for b in pending)

            def report():
                if progress is not None:
                    progress(len(store.done_ids() & all_ids), _count_failed(store), total)

            report()
            root = str(store.root)
            cache = _compilation_cache(store)
            vmap_size = spec.run.batch_size if spec.run.batch else 1
            pending = _worker_tasks(pending, int(workers))
            if executor == "local":
                _run_local(root, pending, int(workers), report, cache, vmap_size)
            else:
                _run_dask(client, root, pending, report, cache, vmap_size)
            report()
            computed = len(store.done_ids() & all_ids) - len(done_before)
            failed = _count_failed(store)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return SweepSummary(total=total, skipped=skipped, computed=computed, failed=failed,
                        wall_time=time.perf_counter() - t0, executor=executor, workers=int(workers),
                        failed_before=len(failed_ids), retried=len(failed_ids) if retry_failed else 0,
                        quarantined=tuple(sorted(invalid)),
                        quarantine_dir=None if qdir is None else str(qdir), retired=tuple(retired))


def _compilation_cache(store: Store) -> str:
    """Where worker processes keep compiled XLA code: ``$LOSSATLAS_JAX_CACHE`` if set, else
    ``~/.cache/lossatlas/jax`` (shared by every sweep of this user, so a sweep of a shape compiled
    before starts at once); the sweep's own folder if neither can be written. Compiled code
    depends only on the computation, so sharing it changes no result."""
    for cand in (os.environ.get("LOSSATLAS_JAX_CACHE"), str(Path.home() / ".cache" / "lossatlas" / "jax")):
        if not cand:
            continue
        try:
            Path(cand).mkdir(parents=True, exist_ok=True)
            if os.access(cand, os.W_OK):
                return cand
        except OSError:
            continue
    return str(store.root / ".jax_cache")


def _check_executor(executor: str, workers: int, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if int(workers) < 1:
        raise InputError(f"workers must be >= 1, got {workers}.")
    if scheduler is not None and executor != "dask":
        raise InputError("--scheduler needs --executor dask.")
    cores = os.cpu_count() or 1
    if executor == "local" and int(workers) > cores:
        raise InputError(f"--workers {workers} is more than the {cores} cores of this machine (the limit of "
                         "the local executor: one single-threaded worker per core); use --executor dask "
                         "with a --scheduler to run on more machines.")


def _check_out_folder(out) -> None:
    """The sweep folder can be created (or is a folder) and written, before any work."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder.")
    target = out if out.is_dir() else out.resolve().parent
    if not out.is_dir() and not target.is_dir():
        raise InputError(f"cannot create {out}: its parent folder does not exist.")
    if not _writable(target):
        raise InputError(f"cannot write into {target}: permission denied.")
    for sub in ("runs", "extras"):
        p = out / sub
        if p.exists() and not (p.is_dir() and _writable(p)):
            raise InputError(f"cannot write into {p}: not a writable folder.")


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (a probe file: os.access is wrong for root on a
    read-only mount and ignores ACLs)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _check_same_sweep(out, doc: dict) -> None:
    """Refuse a folder that holds another sweep's spec.json."""
    import json

    spec_path = Path(out) / "spec.json"
    if not spec_path.is_file():
        return
    try:
        old = json.loads(spec_path.read_text())
    except (ValueError, OSError):
        return  # unreadable: rewritten by this sweep
    old_spec = old.get("spec") if isinstance(old, dict) else None
    if old_spec is not None and old_spec != doc["spec"]:
        name = old_spec.get("name") if isinstance(old_spec, dict) else None
        what = f"sweep {name!r}" if name else "sweep"
        raise InputError(f"{out} holds a different {what} (its spec.json differs from this spec); "
                         "use another --out folder or delete it.")


def _failed_ids(store: Store, ids: set[str]) -> set[str]:
    """Runs among `ids` whose stored record is an error."""
    import json

    out = set()
    for run_id in ids:
        try:
            if json.loads((store.runs / f"{run_id}.json").read_text()).get("run_status") == "error":
                out.add(run_id)
        except (ValueError, OSError):
            pass
    return out


def _count_failed(store: Store) -> int:
    import json

    n = 0
    for p in store.runs.glob("*.json"):
        try:
            if json.loads(p.read_text()).get("run_status") == "error":
                n += 1
        except (ValueError, OSError, AttributeError):
            pass
    return n


def _run_local(root, pending, workers, report, cache, vmap_size):
    """A pool of `workers` spawned processes (one even for ``workers == 1``: this process's JAX
    may already run with other thread settings, which would change the results' last bits)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                initializer=_worker_init, initargs=(cache,)) as pool:
        with _worker_environment():  # the workers are spawned by the first submissions
            futs = [pool.submit(_run_batch_task, root, b, cache, vmap_size) for b in pending]
        try:
            while futs:
                finished, futs = cf.wait(futs, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for f in finished:
                    f.result()
                report()
        except BaseException:
            for f in futs:
                f.cancel()
            raise


def _dask_client(workers, scheduler):
    """A dask client (and its LocalCluster when no scheduler is given); InputError if the
    scheduler cannot be reached."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError('the dask executor needs dask.distributed: pip install "lossatlas[dask]".') from None
    if scheduler is None:
        with _worker_environment():
            # `env`: a worker the nanny restarts after a crash gets the same thread settings
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=_worker_env())
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(f"cannot reach the dask scheduler at {scheduler}: {e}") from None


def _run_dask(client, root, pending, report, cache, vmap_size):
    from dask.distributed import as_completed

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
