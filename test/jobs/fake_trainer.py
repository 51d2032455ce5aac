"""A stand-in trainer for the replica tests: STEPS progress events (one every 20 ms), then a checkpoint and exit 0.
SIGTERM (cancel) ends it. POLICY_TYPE `refuse` fails at once with its own error line, as a refused LeRobot run does."""
import os
import sys
import time

from physical_ai_worker import progress_writer

steps, out, policy_type = int(sys.argv[1]), sys.argv[2], sys.argv[3]
emit = progress_writer()
if policy_type == "refuse":
    emit({"type": "error", "message": "fake-train: error: policy type 'refuse' is refused"})
    print("Traceback (most recent call last): ...", flush=True)
    sys.exit(2)
for step in range(1, steps + 1):
    emit({"type": "progress", "step": step, "total_steps": steps, "loss": 1.0 / step})
    time.sleep(0.02)
path = os.path.join(out, "checkpoints", "%06d" % steps, "pretrained_model")
emit({"type": "checkpoint", "step": steps, "path": path})
