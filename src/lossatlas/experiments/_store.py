"""The result store: one record per run (JSON + ``.npz``), written atomically.

Layout of a sweep folder::

    DIR/spec.json          the validated spec (as JSON)
    DIR/runs/<id>.npz      arrays of a run (written first)
    DIR/runs/<id>.json     the run's record (written last: its presence marks the run done)
    DIR/results.parquet    one row per run, gathered from the records
    DIR/<name>.parquet     sweep-level tables of a kind (teacher_student: families, symmetry)
    DIR/extras/            sweep-level results (e.g. the connecting path)
    DIR/figures/           the report's figures
    DIR/quarantine/<time>/ records found invalid by a later sweep, moved aside (never deleted)
    DIR/.lock              held (``flock``) by the sweep writing the folder: pid and host

Both files are written to a temporary name in the same folder and renamed, so a kill at any
moment leaves either the finished file or nothing (stray ``.tmp`` files are removed by the next
sweep or report). A run counts as done only if its record and its arrays load and validate
(:meth:`Store.check`); anything else is moved to ``quarantine/`` and the run is computed again.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import math
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np

from .._errors import InputError
from ..data import atomic_path


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_json_atomic(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable(obj), indent=1, sort_keys=True))


class Store:
    """A sweep folder (see the module docstring)."""

    def __init__(self, root, *, create: bool = False):
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.extras = self.root / "extras"
        if create:
            self.runs.mkdir(parents=True, exist_ok=True)
            self.extras.mkdir(parents=True, exist_ok=True)
        elif not self.runs.is_dir():
            raise InputError(f"{self.root} is not a lossatlas sweep folder (no runs/ inside).")

    def clean_temporaries(self) -> int:
        """Remove leftovers of writes interrupted by a kill (never a finished file).

        Call it only while holding :meth:`lock` (or knowing no sweep writes the folder): a
        running sweep's temporary files look the same."""
        n = 0
        for folder in (self.root, self.runs, self.extras, self.root / "figures"):
            if not folder.is_dir():
                continue
            for p in folder.glob(".*.tmp*"):
                try:
                    p.unlink()
                    n += 1
                except FileNotFoundError:
                    pass
        return n

    def has(self, run_id: str) -> bool:
        """Whether the run is done: its record and its arrays load and validate."""
        return self.check(run_id) is None

    def check(self, run_id: str) -> str | None:
        """``None`` if the run's record and arrays are valid, else what is wrong with them.

        Valid means: the record is a JSON object with the fields `RECORD_FIELDS` and its own
        run id; the ``.npz`` exists, every array in it reads (the zip checksums pass) and it
        holds every array the record lists under ``array_names``."""
        try:
            rec = _read_record(self.runs / f"{run_id}.json")
        except FileNotFoundError:
            return "no record"
        except ValueError as e:
            return str(e)
        if rec.get("run_id") != run_id:
            return f"record names run {rec.get('run_id')!r}"
        try:
            with np.load(self.runs / f"{run_id}.npz", allow_pickle=False) as z:
                names = set(z.files)
                for k in z.files:
                    z[k]  # reads the array: a truncated or corrupt member raises here
        except FileNotFoundError:
            return "arrays file missing"
        except Exception as e:  # noqa: BLE001 - any unreadable .npz is invalid
            return f"arrays unreadable ({type(e).__name__}: {e})"
        missing = sorted(set(rec.get("array_names", ())) - names)
        if missing:
            return f"arrays missing: {', '.join(missing)}"
        return None

    def scan(self) -> tuple[set[str], dict[str, str]]:
        """Runs with a record: the valid ones, and the invalid ones with what is wrong.

        An ``.npz`` without a record (a kill between the two writes) is not a record: the run
        is simply not done, and its next write replaces the file."""
        valid, invalid = set(), {}
        for p in sorted(self.runs.glob("*.json")):
            why = self.check(p.stem)
            if why is None:
                valid.add(p.stem)
            else:
                invalid[p.stem] = why
        return valid, invalid

    def quarantine(self, invalid: dict[str, str]) -> Path | None:
        """Move the files of the runs `invalid` (run id → reason) into
        ``quarantine/<UTC time>/`` with a ``reasons.json``; return that folder."""
        if not invalid:
            return None
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        dest = self.root / "quarantine" / stamp
        dest.mkdir(parents=True, exist_ok=True)
        for run_id in invalid:
            for suffix in (".json", ".npz"):  # the record (the commit marker) first
                src = self.runs / f"{run_id}{suffix}"
                if src.exists():
                    shutil.move(src, dest / src.name)
        write_json_atomic(dest / "reasons.json", invalid)
        return dest

    def remove(self, run_id: str) -> None:
        """Delete a run's record (first: the run is no longer done) and its arrays."""
        (self.runs / f"{run_id}.json").unlink(missing_ok=True)
        (self.runs / f"{run_id}.npz").unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder's exclusive lock (``DIR/.lock``, ``flock``) for the block.

        A second holder is refused at once with :class:`InputError` naming the holder's pid and
        host. The operating system releases the lock when its process dies (even by
        ``kill -9``), so a stale lock never blocks a later sweep. Not for NFS folders."""
        path = self.root / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(path)
            os.close(fd)
            raise InputError(f"{self.root} is in use by another sweep ({holder}); wait until it "
                             "ends or use another --out folder.") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def is_locked(self) -> bool:
        """Whether a sweep holds the folder's lock now."""
        path = self.root / ".lock"
        if not path.is_file():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def write(self, run_id: str, record: dict, arrays: dict) -> None:
        """Arrays first, then the record (the commit marker), each atomically. The record
        lists its arrays (``array_names``) so that a later check can tell an incomplete file."""
        with atomic_path(self.runs / f"{run_id}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        write_json_atomic(self.runs / f"{run_id}.json", {**record, "array_names": sorted(arrays)})

    def done_ids(self) -> set[str]:
        """Runs with a record file (fast; :meth:`scan` validates them)."""
        return {p.stem for p in self.runs.glob("*.json")}

    def records(self) -> list[dict]:
        """The readable records (without their ``array_names``), in run-id order."""
        out = []
        for p in sorted(self.runs.glob("*.json")):
            try:
                rec = _read_record(p)
            except (ValueError, OSError):
                continue
            rec.pop("array_names", None)
            out.append(rec)
        return out

    def arrays(self, run_id: str) -> dict[str, np.ndarray]:
        p = self.runs / f"{run_id}.npz"
        if not p.is_file():
            return {}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def gather(self):
        """Write ``results.parquet`` (one row per run, scalar fields) and return the table."""
        import pandas as pd

        recs = [{k: v for k, v in r.items() if k != "traceback"} for r in self.records()]
        df = pd.DataFrame(recs)
        if not df.empty and "seed" in df.columns:
            by = (["teacher_index"] if "teacher_index" in df.columns else []) + ["width", "seed"]
            df = df.sort_values(by, kind="stable").reset_index(drop=True)
        self.write_table("results", df)
        return df

    def write_table(self, name: str, df) -> Path:
        """Write ``DIR/<name>.parquet`` atomically (a temporary file renamed)."""
        path = self.root / f"{name}.parquet"
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)
        return path

    def table(self):
        """The gathered table (reads ``results.parquet``, or gathers it)."""
        import pandas as pd

        p = self.root / "results.parquet"
        if not self.done_ids():  # nothing to gather: write nothing
            return pd.DataFrame()
        if p.is_file():
            try:
                return pd.read_parquet(p)
            except Exception as e:  # noqa: BLE001 - corrupt table: say so
                raise InputError(f"{p} is not a readable parquet file ({e}); delete it and rerun "
                                 "`lossatlas atlas` with the same spec to regather it.") from None
        return self.gather()


#: Fields every run record has (results of successful runs and error records alike).
RECORD_FIELDS = ("run_id", "run_status")


def _read_record(path: Path) -> dict:
    """A run record, or ValueError saying why it is not one (FileNotFoundError if absent)."""
    try:
        rec = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise ValueError(f"record unreadable ({type(e).__name__})") from None
    if not isinstance(rec, dict):
        raise ValueError("record is not a JSON object")
    missing = [k for k in RECORD_FIELDS if k not in rec]
    if missing:
        raise ValueError(f"record lacks {', '.join(missing)}")
    return rec


def _lock_holder(path: Path) -> str:
    for _ in range(20):  # the holder writes its pid right after taking the lock
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return "held by " + text
        time.sleep(0.05)
    return "held by a process that has not written its pid"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
