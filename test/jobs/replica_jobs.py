"""Training handlers for the replica tests (test/jobs/replicas.test.ts): one JobRunner per worker process, loaded with
``python3 -m physical_ai_worker --handler train=replica_jobs:train --handler jobs=replica_jobs:jobs ...``.

A job runs ``fake_trainer.py``: ``steps`` progress events (``steps`` from the train options), one checkpoint, exit 0;
it runs until cancelled when ``steps`` is large. ``REPLICA_MAX_FINISHED`` bounds the finished jobs the worker keeps;
runs write under ``REPLICA_OUTPUT_ROOT``.
"""
import os
import sys

from physical_ai_worker import JobRunner, JobSpec

RUNNER = JobRunner(max_finished=int(os.environ.get("REPLICA_MAX_FINISHED", "100")))
TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_trainer.py")
OUTPUT_ROOT = os.environ["REPLICA_OUTPUT_ROOT"]  # a temp folder the test removes


def _build(options, job_id):
    out = os.path.join(OUTPUT_ROOT, options.get("output_folder_name") or job_id)
    return JobSpec(argv=[sys.executable, TRAINER, str(options.get("steps", 3)), out, str(options.get("policy_type"))], output_dir=out)


def train(data, ctx):
    return RUNNER.start(data, _build)


def jobs(data, ctx):
    return RUNNER.query(data, ctx)


def cancel_job(data, ctx):
    return RUNNER.cancel(data)
