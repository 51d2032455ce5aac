"""The direct path's records with a real ZMQServer and real clients: a request served under a client lease is
recorded with the outcome its reply had, a deferred reply (``ctx.defer()``) included, and it counts against the
lease's in-flight limit until that reply is sent."""
import base64
import hashlib
import hmac
import json
import os
import queue
import tempfile
import threading
import time
import unittest

from physical_ai_worker import WorkerError, ZMQClient, ZMQServer

SECRET = b"0123456789abcdef0123456789abcdef"


def sign(claims, secret=SECRET):
    """A lease token as the gateway signs it (src/protocol/lease-token.ts)."""
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    body = "v1." + b64(json.dumps(claims).encode())
    return body + "." + b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())


def client_lease(lease_id="lease-1", max_in_flight=8):
    now = int(time.time() * 1000)
    return sign({"id": lease_id, "fw": "demo", "iat_ms": now, "exp_ms": now + 60000, "max": max_in_flight})


GATEWAY = sign({"id": "gateway", "fw": "demo", "iat_ms": 0, "exp_ms": 0, "max": 0})


class LeaseWorker(object):
    """A worker with a lease secret whose ``later`` handler defers; the test resolves or rejects each reply."""

    def __init__(self, capacity):
        self.dir = tempfile.mkdtemp(prefix="paig-lease-test-")
        path = os.path.join(self.dir, "secret")
        with open(path, "wb") as f:
            f.write(SECRET)
        self.server = ZMQServer("tcp://127.0.0.1:*", framework="demo", capacity=capacity, lease_secret_file=path)
        self.deferred = queue.Queue()  # type: queue.Queue
        self.clients = []

        def later(data, ctx):
            reply = ctx.defer()
            if data.get("now"):
                reply.resolve({"at_once": True})  # resolved before the handler returns
            else:
                self.deferred.put(reply)
            return reply

        self.server.register_handler("later", later)

        def raises(data, ctx):
            reply = ctx.defer()
            if data.get("resolve_first"):
                reply.resolve({"resolved": True})
            else:
                self.deferred.put(reply)
            raise RuntimeError("the handler failed after deferring")

        self.server.register_handler("raises", raises)

    def __enter__(self):
        self.endpoint = self.server.bind()
        self.thread = threading.Thread(target=self.server.run, kwargs={"install_signal_handlers": False}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        for c in self.clients:
            c.close()
        self.server.stop()
        self.thread.join(10)
        self.server.close()
        os.remove(os.path.join(self.dir, "secret"))
        os.rmdir(self.dir)

    def client(self):
        c = ZMQClient(self.endpoint, timeout_ms=5000)
        self.clients.append(c)
        return c

    def send_async(self, data, lease):
        """Sends on a new client from a thread; returns a queue that gets ("ok", result) or ("error", WorkerError)."""
        out = queue.Queue()  # type: queue.Queue
        c = self.client()

        def run():
            try:
                out.put(("ok", c.request("later", data, lease=lease)))
            except WorkerError as err:
                out.put(("error", err))

        threading.Thread(target=run, daemon=True).start()
        return out

    def records(self):
        return self.client().request("lease.metrics", {}, lease=GATEWAY)["records"]


class DeferredUnderLeaseTests(unittest.TestCase):
    def check_outcomes(self, capacity):
        with LeaseWorker(capacity) as w:
            lease = client_lease()
            ok = w.send_async({}, lease)
            w.deferred.get(timeout=10).resolve({"answer": 42})
            self.assertEqual(ok.get(timeout=10), ("ok", {"answer": 42}))
            failed = w.send_async({}, lease)
            w.deferred.get(timeout=10).reject(WorkerError("worker_error", "the robot said no"))
            kind, err = failed.get(timeout=10)
            self.assertEqual((kind, err.code), ("error", "worker_error"))
            self.assertEqual(w.client().request("later", {"now": True}, lease=lease), {"at_once": True})
            records = w.records()
            self.assertEqual([(r["type"], r["outcome"]) for r in records], [("later", "ok"), ("later", "worker_error"), ("later", "ok")])
            for r in records:
                self.assertEqual(r["lease"], "lease-1")
                self.assertGreater(r["response_bytes"], 0, r)
                self.assertGreater(r["request_bytes"], 0, r)
            self.assertEqual(w.records(), [], "records are handed over once")

    def test_a_deferred_reply_is_recorded_with_its_outcome_on_the_serving_thread(self):
        self.check_outcomes(capacity=1)

    def test_a_deferred_reply_is_recorded_with_its_outcome_with_a_thread_pool(self):
        self.check_outcomes(capacity=2)

    def test_a_deferred_request_counts_against_the_lease_limit_until_its_reply(self):
        with LeaseWorker(1) as w:
            lease = client_lease(max_in_flight=1)
            first = w.send_async({}, lease)
            pending = w.deferred.get(timeout=10)
            with self.assertRaises(WorkerError) as refused:
                w.client().request("later", {}, lease=lease)
            self.assertEqual(refused.exception.code, "overloaded")
            pending.resolve({"n": 1})
            self.assertEqual(first.get(timeout=10), ("ok", {"n": 1}))
            self.assertEqual(w.client().request("later", {"now": True}, lease=lease), {"at_once": True}, "the slot is free again")
            self.assertEqual([r["outcome"] for r in w.records()], ["overloaded", "ok", "ok"])


    def test_a_handler_that_raises_after_deferring_answers_once(self):
        # Raised before its deferred reply was sent: the error is the answer, and a later resolve() sends nothing
        # (returns False). Raised after it was sent: that reply is the answer (not an error sent ahead of it), and
        # the lease record says what the client got.
        with LeaseWorker(1) as w:
            lease = client_lease()
            with self.assertRaises(WorkerError) as failed:
                w.client().request("raises", {}, lease=lease)
            self.assertEqual(failed.exception.code, "worker_error")
            self.assertFalse(w.deferred.get(timeout=10).resolve({"late": True}), "the request was answered already")
            self.assertEqual(w.client().request("raises", {"resolve_first": True}, lease=lease), {"resolved": True})
            self.assertEqual([r["outcome"] for r in w.records()], ["worker_error", "ok"])

if __name__ == "__main__":
    unittest.main()
