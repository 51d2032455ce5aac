"""train and command handlers for the Python SDK worker, answering like the TS embedded demo worker
(src/worker/demo-worker.ts), so the contract suite expects the same answers behind both."""
import itertools

_train_ids = itertools.count(1)


def train(data, ctx):
    return {
        "accepted": True,
        "job_id": "demo-train-%d" % next(_train_ids),
        "note": "the demo policy does not train; request acknowledged",
        "config": data,
    }


def command(data, ctx):
    name = data.get("command") if isinstance(data, dict) else None
    return {"acknowledged": True, "command": name if isinstance(name, str) else None}
