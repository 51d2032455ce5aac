"""JobRunner: long-running jobs (training) of a worker, each in its own child process, reported by (long) polling.

    runner = JobRunner(logger=log, max_finished=100)
    runner.register(server, build=lambda options, job_id: JobSpec(argv=[...], output_dir="/out/run1"))

registers three request types on a ZMQServer:
  ``train``      ``{job_id, ...options}`` -> starts ``build(options, job_id)`` and answers at once with the job
  ``jobs``       ``{since?: int, wait_ms?: int}`` -> every job the worker knows (state, progress, error; the running
                 ones and the ``max_finished`` most recent finished ones) and the events with a sequence number above
                 ``since`` (the caller's cursor), so nothing is lost between polls. With ``wait_ms`` > 0 and no such
                 event yet, the answer waits (a long poll) until one is emitted or ``wait_ms`` (capped by the request's
                 deadline) has passed; it is a deferred reply, so the serve loop keeps serving inference meanwhile.
                 The answer says ``long_poll: true`` so a caller knows it may ask again at once.
  ``cancel_job`` ``{job_id, grace_s?}`` -> SIGTERM to the job's process group, SIGKILL after ``grace_s``

The child writes one JSON object per line to the file descriptor named by ``PAIG_PROGRESS_FD`` (see
``progress_writer()``); its stdout and stderr go to ``<output_dir>.log`` (the tail becomes the error of a failed
job). A child that cannot start (bad arguments, a missing dataset) may write ``{"type": "error", "message": line}``
first: that line becomes the job's error instead of the output's tail. It runs in its own process group (cancel reaches its data-loader processes too) and dies with the worker
(PR_SET_PDEATHSIG on Linux), so a job never outlives the worker that reports it.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from .protocol import WorkerError

#: Job states, as the gateway names them.
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
#: Default time a cancelled job gets to stop at a step boundary before it is killed.
DEFAULT_CANCEL_GRACE_S = 10.0
#: Finished jobs a runner keeps (and reports) by default; older ones are forgotten first.
DEFAULT_MAX_FINISHED = 100
#: Longest wait of one long poll, ms.
MAX_WAIT_MS = 60000
#: Time kept back from the request's deadline when a long poll answers empty, s (the reply must arrive in time).
_WAIT_MARGIN_S = 0.25
_MAX_EVENTS = 10000
_LOG_TAIL_BYTES = 4000


class JobSpec(object):
    """What to run for a job: the command, extra environment, and the folder its results go to."""

    def __init__(self, argv: List[str], output_dir: str, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                 on_exit: Optional[Callable[[int], None]] = None):
        self.argv = argv
        self.output_dir = output_dir
        self.env = env or {}
        self.cwd = cwd
        #: Called with the exit code once the process has ended, before the job's final state is reported (e.g.
        #: to remove a checkpoint a killed process left half written).
        self.on_exit = on_exit


def progress_writer() -> Callable[[Dict[str, Any]], None]:
    """In the child: a function that sends one progress event to the worker (a no-op when not run by a JobRunner)."""
    fd = os.environ.get("PAIG_PROGRESS_FD")
    if not fd:
        return lambda event: None
    stream = os.fdopen(int(fd), "w", buffering=1)

    def write(event: Dict[str, Any]) -> None:
        stream.write(json.dumps(event) + "\n")
        stream.flush()

    return write


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class _Job(object):
    def __init__(self, job_id: str, options: Dict[str, Any], spec: JobSpec):
        self.job_id = job_id
        self.options = options
        self.spec = spec
        self.state = "running"
        self.error = None  # type: Optional[str]
        self.progress = {}  # type: Dict[str, Any]
        self.checkpoints = []  # type: List[str]
        self.started_at = time.time()
        self.ended_at = None  # type: Optional[float]
        self.cancel_requested = False
        self.proc = None  # type: Optional[subprocess.Popen]
        self.exit_code = None  # type: Optional[int]
        #: The line the child reported with {"type": "error"} (why it could not start), if any.
        self.reported_error = None  # type: Optional[str]

    def record(self) -> Dict[str, Any]:
        return {
            "job_id": self.job_id, "state": self.state, "error": self.error, "options": self.options,
            "progress": dict(self.progress), "checkpoints": list(self.checkpoints), "output_dir": self.spec.output_dir,
            "started_at": self.started_at, "ended_at": self.ended_at, "exit_code": self.exit_code,
            "pid": self.proc.pid if self.proc is not None else None,
        }


class JobRunner(object):
    """Runs jobs in child processes and keeps their records and progress events for polling."""

    def __init__(self, logger: Optional[logging.Logger] = None, on_finished: Optional[Callable[[Dict[str, Any]], None]] = None,
                 max_finished: int = DEFAULT_MAX_FINISHED):
        """max_finished: finished jobs kept and reported (the most recent; >= 0). Running jobs are always kept."""
        if not isinstance(max_finished, int) or isinstance(max_finished, bool) or max_finished < 0:
            raise ValueError("max_finished must be an integer >= 0, got %r" % (max_finished,))
        self._log = logger or logging.getLogger("physical_ai_worker.jobs")
        self._lock = threading.Lock()
        self._jobs = {}  # type: Dict[str, _Job]
        self._events: Deque[Dict[str, Any]] = deque(maxlen=_MAX_EVENTS)
        self._seq = 0
        self._on_finished = on_finished
        self._max_finished = max_finished
        self._waiters = []  # type: List[_Waiter]

    # ---- requests ----

    def register(self, server: Any, build: Callable[[Dict[str, Any], str], JobSpec]) -> None:
        """Registers ``train``, ``jobs`` and ``cancel_job`` on ``server``; ``build`` turns options into a JobSpec."""
        server.register_handler("train", lambda data, ctx: self.start(data, build))
        server.register_handler("jobs", lambda data, ctx: self.query(data, ctx))
        server.register_handler("cancel_job", lambda data, ctx: self.cancel(data))

    def start(self, data: Any, build: Callable[[Dict[str, Any], str], JobSpec]) -> Dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not data["job_id"]:
            raise WorkerError("bad_request", "/data/job_id: a train request needs a job_id (the gateway gives one)", "/data/job_id")
        job_id = data["job_id"]
        options = {k: v for k, v in data.items() if k != "job_id"}
        with self._lock:
            if job_id in self._jobs:
                return self._jobs[job_id].record()  # the same request again (a retry): the job it started
        spec = build(options, job_id)
        job = _Job(job_id, options, spec)
        parent = os.path.dirname(os.path.abspath(spec.output_dir))
        os.makedirs(parent, exist_ok=True)
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env.update(spec.env)
        env["PAIG_PROGRESS_FD"] = str(write_fd)
        env["PAIG_JOB_ID"] = job_id
        log_path = os.path.abspath(spec.output_dir) + ".log"
        try:
            with open(log_path, "wb") as log_file:
                job.proc = subprocess.Popen(
                    spec.argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,), start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
        except OSError as err:
            os.close(read_fd)
            raise WorkerError("worker_error", "cannot start the job: %s" % err) from err
        finally:
            os.close(write_fd)
        with self._lock:
            self._jobs[job_id] = job
            self._emit(job, {"type": "state", "state": "running"})
        self._log.info("job %s started (pid %d): %s", job_id, job.proc.pid, " ".join(spec.argv))
        threading.Thread(target=self._read_progress, args=(job, read_fd, log_path), name="job-%s" % job_id, daemon=True).start()
        return job.record()

    def query(self, data: Any, ctx: Any = None) -> Any:
        """The ``jobs`` request: the answer now, or (``wait_ms`` > 0, nothing new, a ``ctx`` that can defer) a
        DeferredReply answered when an event arrives or the wait ends."""
        since = data.get("since", 0) if isinstance(data, dict) else 0
        if not isinstance(since, int) or isinstance(since, bool):
            raise WorkerError("bad_request", "/data/since: expected an integer", "/data/since")
        wait_ms = data.get("wait_ms", 0) if isinstance(data, dict) else 0
        if not isinstance(wait_ms, int) or isinstance(wait_ms, bool) or not 0 <= wait_ms <= MAX_WAIT_MS:
            raise WorkerError("bad_request", "/data/wait_ms: expected an integer from 0 to %d" % MAX_WAIT_MS, "/data/wait_ms")
        wait_s = wait_ms / 1000.0
        remaining = ctx.remaining_ms() if ctx is not None else None
        if remaining is not None:
            wait_s = min(wait_s, remaining / 1000.0 - _WAIT_MARGIN_S)
        with self._lock:
            if wait_s <= 0 or ctx is None or self._seq > since:
                return self._snapshot(since)
            waiter = _Waiter(since, ctx.defer())
            self._waiters.append(waiter)
        waiter.timer = threading.Timer(wait_s, self._wait_over, args=(waiter,))
        waiter.timer.daemon = True
        waiter.timer.start()
        return waiter.reply

    def cancel(self, data: Any) -> Dict[str, Any]:
        job_id = data.get("job_id") if isinstance(data, dict) else None
        grace_s = data.get("grace_s", DEFAULT_CANCEL_GRACE_S) if isinstance(data, dict) else DEFAULT_CANCEL_GRACE_S
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            if job is None:
                raise WorkerError("bad_request", "/data/job_id: no job %r on this worker" % (job_id,), "/data/job_id")
            if job.state in TERMINAL or job.cancel_requested:
                return job.record()
            job.cancel_requested = True
            proc = job.proc
        assert proc is not None
        self._signal(proc, signal.SIGTERM)
        timer = threading.Timer(float(grace_s), self._kill_if_running, args=(job,))
        timer.daemon = True
        timer.start()
        self._log.info("job %s: cancel requested (SIGTERM, SIGKILL after %.1f s)", job_id, grace_s)
        return job.record()

    def close(self, grace_s: float = 5.0) -> None:
        """Answers the waiting long polls, stops every running job (SIGTERM, then SIGKILL after ``grace_s``) and
        waits for them."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.state == "running"]
            self._answer_waiters()
        procs = [j.proc for j in running if j.proc is not None]
        for job in running:
            job.cancel_requested = True
        for proc in procs:
            self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()

    # ---- internals ----

    def _snapshot(self, since: int) -> Dict[str, Any]:
        """The answer to ``jobs {since}`` (caller holds the lock)."""
        return {
            "jobs": [j.record() for j in self._jobs.values()],
            "events": [e for e in self._events if e["seq"] > since],
            "next": self._seq,
            "pid": os.getpid(),
            "long_poll": True,
        }

    def _answer_waiters(self) -> None:
        """Answers every waiting long poll with what is new for it (caller holds the lock)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.reply.resolve(self._snapshot(waiter.since))

    def _wait_over(self, waiter: "_Waiter") -> None:
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                waiter.reply.resolve(self._snapshot(waiter.since))

    def _emit(self, job: _Job, event: Dict[str, Any]) -> None:
        """Appends an event and answers the waiting long polls (caller holds the lock)."""
        self._seq += 1
        event = dict(event, seq=self._seq, job_id=job.job_id, time=time.time())
        self._events.append(event)
        if self._waiters:
            self._answer_waiters()

    def _forget_old(self) -> None:
        """Keeps the max_finished most recently ended jobs (caller holds the lock)."""
        finished = sorted((j for j in self._jobs.values() if j.state in TERMINAL), key=lambda j: j.ended_at or 0.0)
        for job in finished[: max(0, len(finished) - self._max_finished)]:
            del self._jobs[job.job_id]

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # the job's own session: its data-loader processes too
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_if_running(self, job: _Job) -> None:
        if job.proc is not None and job.proc.poll() is None:
            self._log.warning("job %s did not stop within its grace period: SIGKILL", job.job_id)
            self._signal(job.proc, signal.SIGKILL)

    def _read_progress(self, job: _Job, read_fd: int, log_path: str) -> None:
        with os.fdopen(read_fd, "r", buffering=1) as stream:
            for line in stream:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                with self._lock:
                    if event.get("type") == "checkpoint" and isinstance(event.get("path"), str):
                        job.checkpoints.append(event["path"])
                    elif event.get("type") == "error" and isinstance(event.get("message"), str):
                        job.reported_error = event["message"][:_LOG_TAIL_BYTES]
                    elif event.get("type") == "progress":
                        job.progress.update({k: v for k, v in event.items() if k != "type"})
                    self._emit(job, event)
        assert job.proc is not None
        code = job.proc.wait()  # the pipe closes when the child (and every process it shared the fd with) exits
        if job.spec.on_exit is not None:
            try:
                job.spec.on_exit(code)
            except Exception:
                self._log.exception("on_exit of job %s failed", job.job_id)
        with self._lock:
            job.exit_code = code
            job.ended_at = time.time()
            if job.cancel_requested:
                job.state = "cancelled"
            elif code == 0:
                job.state = "succeeded"
            else:
                job.state = "failed"
                if job.reported_error is not None:
                    job.error = "%s (output: %s)" % (job.reported_error, log_path)
                else:
                    how = "was killed by signal %d" % -code if code < 0 else "exited with code %d" % code
                    job.error = "the training process %s; last output:\n%s" % (how, _tail(log_path))
            self._emit(job, {"type": "state", "state": job.state, "error": job.error, "exit_code": code})
            record = job.record()
            self._forget_old()
        self._log.info("job %s %s (exit code %s)", job.job_id, job.state, code)
        if self._on_finished is not None:
            try:
                self._on_finished(record)
            except Exception:
                self._log.exception("on_finished of job %s failed", job.job_id)


class _Waiter(object):
    """A long poll waiting for an event after ``since``."""

    __slots__ = ("since", "reply", "timer")

    def __init__(self, since: int, reply: Any):
        self.since = since
        self.reply = reply
        self.timer = None  # type: Optional[threading.Timer]


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return "(no log)"
