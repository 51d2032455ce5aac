"""JobRunner with real child processes: progress events in order, success, failure with the output's tail or the
child's own error line, cancel, the bound on finished jobs, and the long poll through a real ZMQServer (a waiting
`jobs` request does not hold inference on a capacity=1 worker)."""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

from physical_ai_worker import JobRunner, JobSpec, WorkerError, ZMQClient, ZMQServer

CHILD = r"""
import sys, time
from physical_ai_worker import progress_writer
emit = progress_writer()
mode = sys.argv[1]
for step in range(1, 4):
    emit({"type": "progress", "step": step, "total_steps": 3, "loss": 1.0 / step})
emit({"type": "checkpoint", "step": 3, "path": "/tmp/x"})
if mode == "fail":
    print("diverged at step 3", flush=True)
    sys.exit(2)
if mode == "hang":
    time.sleep(60)
if mode == "refused":
    emit({"type": "error", "message": "trainer: error: argument --policy.type: invalid choice: 'nosuch'"})
    print("Traceback (most recent call last):\n  ...a long stack...", flush=True)
    sys.exit(2)
"""

# Reads a line from the named pipe in argv[1] before its first event: the test decides when the job reports.
GATED = r"""
import sys
from physical_ai_worker import progress_writer
emit = progress_writer()
with open(sys.argv[1]) as gate:
    gate.readline()
emit({"type": "progress", "step": 1, "total_steps": 1, "loss": 0.5})
"""


class JobRunnerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="paig-jobs-")
        self.runner = JobRunner()
        self.env = {"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}

    def tearDown(self) -> None:
        self.runner.close(grace_s=1.0)
        shutil.rmtree(self.dir, ignore_errors=True)

    def build(self, options, job_id):
        return JobSpec(argv=[sys.executable, "-c", CHILD, options["mode"]], output_dir=os.path.join(self.dir, job_id), env=self.env)

    def wait_final(self, job_id):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for job in self.runner.query({})["jobs"]:
                if job["job_id"] == job_id and job["state"] != "running":
                    return job
            time.sleep(0.02)
        self.fail("job %s did not end" % job_id)

    def test_success_reports_every_event_in_order(self) -> None:
        self.runner.start({"job_id": "a", "mode": "ok"}, self.build)
        job = self.wait_final("a")
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["progress"]["step"], 3)
        self.assertEqual(job["checkpoints"], ["/tmp/x"])
        events = self.runner.query({"since": 0})["events"]
        self.assertEqual([e["type"] for e in events], ["state", "progress", "progress", "progress", "checkpoint", "state"])
        self.assertEqual([e["seq"] for e in events], list(range(1, 7)))
        self.assertEqual(self.runner.query({"since": 4})["events"][0]["type"], "checkpoint")

    def test_failure_carries_the_output_tail(self) -> None:
        self.runner.start({"job_id": "b", "mode": "fail"}, self.build)
        job = self.wait_final("b")
        self.assertEqual(job["state"], "failed")
        self.assertIn("exited with code 2", job["error"])
        self.assertIn("diverged at step 3", job["error"])

    def test_cancel_stops_the_process(self) -> None:
        self.runner.start({"job_id": "c", "mode": "hang"}, self.build)
        while not any(e["type"] == "checkpoint" for e in self.runner.query({})["events"]):
            time.sleep(0.02)
        self.runner.cancel({"job_id": "c", "grace_s": 5})
        job = self.wait_final("c")
        self.assertEqual(job["state"], "cancelled")

    def test_the_child_s_own_error_line_is_the_error(self) -> None:
        self.runner.start({"job_id": "r", "mode": "refused"}, self.build)
        job = self.wait_final("r")
        self.assertEqual(job["state"], "failed")
        self.assertTrue(job["error"].startswith("trainer: error: argument --policy.type: invalid choice: 'nosuch' (output: "), job["error"])
        self.assertNotIn("Traceback", job["error"])

    def test_keeps_only_the_most_recent_finished_jobs(self) -> None:
        runner = JobRunner(max_finished=2)
        try:
            for job_id in ("f1", "f2", "f3"):
                runner.start({"job_id": job_id, "mode": "ok"}, self.build)
                deadline = time.monotonic() + 30
                while not any(j["job_id"] == job_id and j["state"] == "succeeded" for j in runner.query({})["jobs"]):
                    self.assertLess(time.monotonic(), deadline, "job %s did not end" % job_id)
                    time.sleep(0.02)
            self.assertEqual(sorted(j["job_id"] for j in runner.query({})["jobs"]), ["f2", "f3"])
        finally:
            runner.close(grace_s=1.0)
        with self.assertRaises(ValueError):
            JobRunner(max_finished=-1)

    def test_bad_requests(self) -> None:
        with self.assertRaises(WorkerError) as err:
            self.runner.start({"mode": "ok"}, self.build)
        self.assertEqual(err.exception.code, "bad_request")
        with self.assertRaises(WorkerError):
            self.runner.cancel({"job_id": "nope"})
        with self.assertRaises(WorkerError):
            self.runner.query({"since": "x"})
        with self.assertRaises(WorkerError):
            self.runner.query({"since": 0, "wait_ms": -1})


class LongPollTest(unittest.TestCase):
    """`jobs {since, wait_ms}` through a real ZMQServer (capacity 1) and client."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="paig-jobs-")
        self.runner = JobRunner()
        self.server = ZMQServer("tcp://127.0.0.1:*", framework="jobs-test")
        self.server.register_handler("inference", lambda data, ctx: {"echo": data})
        env = {"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
        self.gate = os.path.join(self.dir, "gate")
        os.mkfifo(self.gate)
        self.runner.register(self.server, lambda options, job_id: JobSpec(
            argv=[sys.executable, "-c", GATED, self.gate], output_dir=os.path.join(self.dir, job_id), env=env))
        self.endpoint = self.server.bind()
        self.thread = threading.Thread(target=self.server.run, kwargs={"install_signal_handlers": False}, daemon=True)
        self.thread.start()
        self.clients = []  # type: list

    def tearDown(self) -> None:
        for client in self.clients:
            client.close()
        self.runner.close(grace_s=1.0)
        self.server.stop()
        self.thread.join(10)
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> ZMQClient:
        client = ZMQClient(self.endpoint, timeout_ms=20000)
        self.clients.append(client)
        return client

    def test_a_waiting_poll_does_not_hold_inference_and_answers_with_the_next_event(self) -> None:
        started = self.client().request("train", {"job_id": "g"})
        self.assertEqual(started["state"], "running")
        proc = self.runner._jobs["g"].proc
        cursor = self.client().request("jobs", {"since": 0})["next"]  # the job's "running" event
        answer = {}  # type: dict

        def poll() -> None:
            answer.update(self.client().request("jobs", {"since": cursor, "wait_ms": 15000}))

        waiting = threading.Thread(target=poll)
        waiting.start()
        deadline = time.monotonic() + 10
        while not self.runner._waiters:  # the poll is parked in the runner, not in the serve loop
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        # The capacity-1 serve loop answers inference while the poll waits.
        self.assertEqual(self.client().request("inference", {"x": 1})["echo"], {"x": 1})
        self.assertTrue(waiting.is_alive(), "the poll still waits: nothing happened yet")
        self.assertIsNone(proc.poll() if proc is not None else 0, "the job still runs")
        # Let the child report: the waiting poll answers with that event and the cursor after it.
        with open(self.gate, "w") as gate:
            gate.write("go\n")
        waiting.join(20)
        self.assertFalse(waiting.is_alive())
        self.assertTrue(answer["long_poll"])
        self.assertGreater(answer["next"], cursor)
        self.assertEqual([e["type"] for e in answer["events"]][:1], ["progress"])

    def test_an_empty_wait_answers_at_its_end_and_close_answers_waiting_polls(self) -> None:
        reply = self.client().request("jobs", {"since": 0, "wait_ms": 200})
        self.assertEqual((reply["events"], reply["long_poll"]), ([], True))
        answer = {}  # type: dict
        waiting = threading.Thread(target=lambda: answer.update(self.client().request("jobs", {"since": 0, "wait_ms": 60000})))
        waiting.start()
        while not self.runner._waiters:
            time.sleep(0.01)
        self.runner.close()
        waiting.join(20)
        self.assertEqual(answer["events"], [])


if __name__ == "__main__":
    unittest.main()
