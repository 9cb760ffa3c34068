"""Long work as jobs: queued, run a bounded number at a time, with progress, a time limit,
cancel, and a result kept for a while. Plain Python; the HTTP API is a thin layer over it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import Cancelled, LipsyncError
from ..core.progress import Progress

KEEP = 100  # finished jobs whose results stay available
log = logging.getLogger(__name__)


class Busy(LipsyncError):
    """Too many jobs are waiting; the client should retry later."""


@dataclass
class Job:
    id: str
    kind: str  # what it makes: "text", "audio", "video", "speech", "transcript", ...
    status: str = "queued"  # queued, running, done, failed, cancelled
    progress: float = 0.0
    stage: str = "queued"
    error: str = ""  # what went wrong and the fix, when failed or cancelled
    error_type: str = ""  # the error's class: InputError, EngineUnavailable, Cancelled, ...
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def summary(self) -> dict:
        """The job's state as JSON: everything but the result."""
        keys = ("id", "kind", "status", "progress", "stage", "error", "error_type", "created")
        out = {k: getattr(self, k) for k in keys}
        out["started"], out["finished"] = self.started, self.finished
        out["seconds"] = (
            round((self.finished or time.time()) - self.started, 3) if self.started else 0
        )
        return out

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class Jobs:
    """Runs jobs `workers` at a time; at most `max_queued` wait; each stops at `time_limit_s`."""

    def __init__(self, workers: int = 1, max_queued: int = 8, time_limit_s: float = 600.0):
        self.max_queued, self.time_limit_s = max_queued, time_limit_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lipsync-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(self, kind: str, work: Callable[[Progress], Any]) -> Job:
        """Queue `work(progress)`; raises Busy when max_queued jobs are already waiting."""
        with self._lock:
            waiting = sum(j.status == "queued" for j in self._jobs.values())
            if waiting >= self.max_queued:
                raise Busy(
                    f"{waiting} jobs are already waiting; retry when one has finished "
                    "(GET /jobs shows them), or start the server with more --workers."
                )
            job = Job(f"{next(self._ids)}-{int(time.time() * 1000) % 100000:05d}", kind)
            self._jobs[job.id] = job
            self._prune()
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one never starts, a running one stops at its next step."""
        job = self.get(job_id)
        job._cancel.set()
        with self._lock:
            if job.status == "queued":
                self._finish(job, "cancelled", "Cancelled", "cancelled before it started")
        return job

    def shutdown(self) -> None:
        """Cancel everything and wait for the running jobs to stop."""
        for job in self.all():
            job._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job, work: Callable[[Progress], Any]) -> None:
        with self._lock:
            if job.finished is not None:  # cancelled while it waited
                return
            job.status, job.started, job.stage = "running", time.time(), "starting"
        deadline = time.monotonic() + self.time_limit_s

        def progress(done: float, stage: str) -> None:
            job.progress, job.stage = round(min(max(done, 0.0), 1.0), 4), stage
            if job._cancel.is_set():
                raise Cancelled("cancelled by the client")
            if time.monotonic() > deadline:
                raise Cancelled(
                    f"stopped at the server's time limit of {self.time_limit_s:.0f} s; send "
                    "shorter audio, or start the server with a longer --time-limit"
                )

        try:
            job.result = work(progress)
        except Cancelled as e:
            log.info("job %s (%s) cancelled: %s", job.id, job.kind, e)
            return self._finish(job, "cancelled", "Cancelled", str(e))
        except LipsyncError as e:  # the input or the machine: the message says the fix
            log.info("job %s (%s) failed: %s", job.id, job.kind, e, exc_info=True)
            return self._finish(job, "failed", type(e).__name__, str(e))
        except Exception as e:  # a bug: the job fails, the server keeps serving
            log.exception("job %s (%s) crashed", job.id, job.kind)
            return self._finish(job, "failed", "InternalError", internal_message(e))
        job.progress = 1.0
        self._finish(job, "done")

    def _finish(self, job: Job, status: str, error_type: str = "", error: str = "") -> None:
        job.status, job.error_type, job.error, job.finished = status, error_type, error, time.time()
        job.stage = status
        job._done.set()

    def _prune(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.finished is not None]
        for k in finished[: max(0, len(finished) - KEEP)]:
            del self._jobs[k]


def internal_message(e: BaseException) -> str:
    """What a client is told of a bug: the exception, and where its traceback went."""
    return (
        f"internal error: {type(e).__name__}: {e}; this is a bug in the bridge: the server's "
        "log has the traceback, please report it with the request that caused it"
    )
