"""JobRunner with real child processes: progress events in order, success, failure with the output's tail, cancel."""
import os
import shutil
import sys
import tempfile
import time
import unittest

from physical_ai_worker import JobRunner, JobSpec, WorkerError

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

    def test_bad_requests(self) -> None:
        with self.assertRaises(WorkerError) as err:
            self.runner.start({"mode": "ok"}, self.build)
        self.assertEqual(err.exception.code, "bad_request")
        with self.assertRaises(WorkerError):
            self.runner.cancel({"job_id": "nope"})
        with self.assertRaises(WorkerError):
            self.runner.query({"since": "x"})


if __name__ == "__main__":
    unittest.main()
