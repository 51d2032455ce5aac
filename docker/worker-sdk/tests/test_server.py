"""ZMQServer unit tests: a real ROUTER socket on 127.0.0.1 served from a thread, real clients."""
import os
import queue
import tempfile
import threading
import time
import unittest

import msgpack
import numpy as np
import zmq

from physical_ai_worker import NO_REPLY, ShmArena, WorkerError, ZMQClient, ZMQServer, demo_action, demo_policy
from physical_ai_worker.protocol import SDK_NAME


class Running(object):
    """A server running in a background thread; closes everything on exit."""

    def __init__(self, **options):
        self.server = ZMQServer("tcp://127.0.0.1:*", **options)
        self.calls = []

    def __enter__(self):
        self.endpoint = self.server.bind()
        self.thread = threading.Thread(target=self.server.run, kwargs={"install_signal_handlers": False}, daemon=True)
        self.thread.start()
        return self

    def client(self, **options):
        c = ZMQClient(self.endpoint, timeout_ms=options.pop("timeout_ms", 5000), **options)
        self.clients.append(c)
        return c

    clients = None

    def __exit__(self, *exc):
        for c in self.clients or []:
            c.close()
        self.server.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "run() did not return after stop()"
        self.server.close()


def running(**options):
    r = Running(**options)
    r.clients = []
    return r


class ServerTests(unittest.TestCase):
    def test_health_reports_ready_and_identity(self):
        with running(framework="demo", model="demo-v1", capacity=1) as r:
            h = r.client().health()
        self.assertEqual(h["ready"], True)
        self.assertEqual(h["framework"], "demo")
        self.assertEqual(h["model"], "demo-v1")
        self.assertEqual(h["capacity"], 1)
        self.assertEqual(h["in_flight"], 0)
        self.assertEqual(h["version"], 1)
        self.assertEqual(h["sdk"], SDK_NAME)
        self.assertGreaterEqual(h["uptime_s"], 0)

    def test_demo_inference_on_every_codec(self):
        state = np.linspace(-1, 1, 14).astype(np.float32)
        expected = demo_action(state)
        with running() as r:
            r.server.register_handler("inference", demo_policy)
            for codec in ("binary", "msgpack", "json"):
                with self.subTest(codec=codec):
                    c = r.client(codec=codec)
                    reply = c.request_raw("inference", {"state": state, "instruction": "pick"})
                    self.assertEqual(reply.codec, codec)
                    h = reply.header
                    self.assertEqual(h["status"], "success")
                    self.assertEqual(set(h["timing"]), {"decode_ms", "compute_ms", "total_ms"})
                    action = np.asarray(h["result"]["action"], dtype=np.float32)
                    self.assertEqual(action.shape, (16, 14))
                    self.assertTrue(np.array_equal(action, expected))
                    self.assertEqual(h["result"]["instruction"], "pick")
                    self.assertAlmostEqual(h["result"]["dt_s"], 1 / 30)

    def test_demo_action_formula(self):
        state = np.array([0.5, -2.0, 1e-3], dtype=np.float32)
        a = demo_action(state)
        self.assertEqual(a.dtype, np.float32)
        for k in range(16):
            for j in range(3):
                self.assertEqual(a[k, j], np.float32(float(state[j]) + float(np.float32(0.01 * (k + 1)))))

    def test_demo_policy_inputs(self):
        ok = demo_policy({"state": np.arange(3, dtype=np.float64), "images": {"c": np.zeros((2, 2, 3), np.uint8)}})
        self.assertEqual(ok["action"].dtype, np.float32)
        self.assertEqual(demo_policy({"robot_state": [1, 2], "image": [[[0, 0, 0]]]})["action"].shape, (16, 2))
        for data, path in (
            ({}, "/data/state"),
            ({"state": []}, "/data/state"),
            ({"state": [[1.0]]}, "/data/state"),
            ({"state": np.zeros((2, 2), np.float32)}, "/data/state"),
            ({"state": "x"}, "/data/state"),
            ({"state": [1.0, float("nan")]}, "/data/state/1"),
            ({"robot_state": []}, "/data/robot_state"),
            ({"state": [1.0], "instruction": 3}, "/data/instruction"),
            ({"state": [1.0], "images": []}, "/data/images"),
            ({"state": [1.0], "images": {"c": np.zeros((2, 2), np.uint8)}}, "/data/images/c"),
            ("nope", "/data"),
        ):
            with self.subTest(data=repr(data)[:60]):
                with self.assertRaises(WorkerError) as caught:
                    demo_policy(data)
                self.assertEqual((caught.exception.code, caught.exception.path), ("bad_request", path))

    def test_errors_keep_the_server_serving(self):
        def fails(data, ctx):
            raise ValueError("bad thing")

        def refuses(data, ctx):
            raise WorkerError("overloaded", "busy", "/data")

        with running() as r:
            r.server.register_handler("fails", fails)
            r.server.register_handler("refuses", refuses)
            r.server.register_handler("inference", demo_policy)
            c = r.client()
            for kind, code, text in (("fails", "worker_error", "bad thing"), ("refuses", "overloaded", "busy"), ("nope", "bad_request", "nope")):
                with self.subTest(kind=kind):
                    with self.assertRaises(WorkerError) as caught:
                        c.request(kind, {})
                    self.assertEqual(caught.exception.code, code)
                    self.assertIn(text, caught.exception.message)
            with self.assertRaises(WorkerError) as caught:
                c.request("nope", {})
            self.assertIn("fails, health, inference, refuses", caught.exception.message)
            with self.assertRaises(WorkerError) as caught:
                c.request("inference", {"images": {}})
            self.assertEqual((caught.exception.code, caught.exception.path), ("bad_request", "/data/state"))
            self.assertEqual(c.request("inference", {"state": [1.0]})["action"].shape, (16, 1))
            self.assertEqual(r.server.stats["errors"].get("worker_error"), 1)

    def test_unencodable_result_is_worker_error(self):
        with running() as r:
            r.server.register_handler("x", lambda d, c: {"half": np.zeros(2, np.float16)})
            with self.assertRaises(WorkerError) as caught:
                r.client().request("x")
            self.assertEqual(caught.exception.code, "worker_error")
            self.assertIn("float16", caught.exception.message)

    def test_expired_deadline_skips_the_handler(self):
        calls = []
        with running() as r:
            r.server.register_handler("inference", lambda d, c: calls.append(1) or {"ok": True})
            c = r.client()
            with self.assertRaises(WorkerError) as caught:
                c.request("inference", {}, timeout_ms=100, timestamp=time.time() - 10)
            self.assertEqual(caught.exception.code, "timeout")
            self.assertEqual(calls, [])
            self.assertEqual(c.request("inference", {}, timeout_ms=5000), {"ok": True})
            self.assertEqual(calls, [1])

    def test_context_carries_request_id_deadline_and_trace(self):
        seen = {}

        def handler(data, ctx):
            seen.update(request_id=ctx.request_id, traceparent=ctx.traceparent, left=ctx.remaining_ms(), codec=ctx.codec)
            ctx.logger.debug({"event": "test"})
            return None

        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        with running() as r:
            r.server.register_handler("x", handler)
            reply = r.client().request_raw("x", {}, timeout_ms=3000, traceparent=tp)
        self.assertEqual(seen["request_id"], reply.header["request_id"])
        self.assertEqual(seen["traceparent"], tp)
        self.assertTrue(0 < seen["left"] <= 3000)
        self.assertEqual(seen["codec"], "binary")

    def test_not_ready_answers_unavailable_until_set_ready(self):
        with running(ready=False) as r:
            r.server.register_handler("inference", demo_policy)
            c = r.client()
            self.assertIs(c.health()["ready"], False)
            with self.assertRaises(WorkerError) as caught:
                c.request("inference", {"state": [1.0]})
            self.assertEqual(caught.exception.code, "unavailable")
            r.server.set_ready(True)
            self.assertIs(c.health()["ready"], True)
            c.request("inference", {"state": [1.0]})

    def test_no_reply_times_out_and_the_late_reply_never_reaches_the_next_request(self):
        with running() as r:
            r.server.register_handler("silent", lambda d, c: NO_REPLY)
            r.server.register_handler("slow", lambda d, c: time.sleep(0.3) or {"slow": True})
            r.server.register_handler("fast", lambda d, c: {"fast": True})
            c = r.client()
            with self.assertRaises(WorkerError) as caught:
                c.request("silent", {}, timeout_ms=200)
            self.assertEqual(caught.exception.code, "timeout")
            with self.assertRaises(WorkerError):
                c.request("slow", {}, timeout_ms=50)
            self.assertEqual(c.request("fast", {}, timeout_ms=5000), {"fast": True})
            self.assertEqual(c.late_replies, 1)

    def test_capacity_runs_handlers_concurrently_and_health_answers_while_busy(self):
        lock = threading.Lock()
        state = {"now": 0, "max": 0}

        def sleepy(data, ctx):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.2)
            with lock:
                state["now"] -= 1
            return {"id": data["id"]}

        with running(capacity=3) as r:
            r.server.register_handler("sleep", sleepy)
            results = {}

            def call(i):
                c = ZMQClient(r.endpoint, timeout_ms=10000)
                try:
                    results[i] = c.request("sleep", {"id": i})
                finally:
                    c.close()

            threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            time.sleep(0.1)
            health = r.client().health(timeout_ms=5000)
            for t in threads:
                t.join(20)
        self.assertEqual({i: v["id"] for i, v in results.items()}, {i: i for i in range(6)})
        self.assertGreaterEqual(state["max"], 2)
        self.assertLessEqual(state["max"], 3)
        self.assertGreaterEqual(health["in_flight"], 1)
        self.assertEqual(health["capacity"], 3)

    def test_max_queue_answers_overloaded(self):
        gate = threading.Event()
        with running(capacity=2, max_queue=0) as r:
            r.server.register_handler("wait", lambda d, c: gate.wait(10) and {"ok": True})
            clients = [ZMQClient(r.endpoint, timeout_ms=10000) for _ in range(2)]
            threads = [threading.Thread(target=c.request, args=("wait",)) for c in clients]
            for t in threads:
                t.start()
            deadline = time.time() + 10
            while r.server.in_flight < 2 and time.time() < deadline:
                time.sleep(0.01)
            with self.assertRaises(WorkerError) as caught:
                r.client().request("wait")
            self.assertEqual(caught.exception.code, "overloaded")
            gate.set()
            for t in threads:
                t.join(10)
            for c in clients:
                c.close()

    def test_raw_dealer_without_delimiter_and_bad_frames(self):
        with running() as r:
            ctx = zmq.Context()
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(r.endpoint)
            try:
                s.send_multipart([msgpack.packb({"type": "health", "request_id": "a"})])
                self.assertTrue(s.poll(5000))
                reply = msgpack.unpackb(s.recv_multipart()[0])
                self.assertEqual((reply["status"], reply["request_id"]), ("success", "a"))
                s.send_multipart([b"", b"\xc1"])
                self.assertTrue(s.poll(5000))
                frames = s.recv_multipart()
                self.assertEqual(frames[0], b"")
                reply = msgpack.unpackb(frames[1])
                self.assertEqual(reply["error"]["code"], "bad_request")
                self.assertNotIn("request_id", reply)
                s.send_multipart([b"", b'{"type": "health"'])
                self.assertTrue(s.poll(5000))
                self.assertEqual(s.recv_multipart()[1][:1], b"{")  # a JSON error for a JSON-looking request
            finally:
                s.close(0)
                ctx.term()

    def test_register_handler_rules_and_decorator(self):
        server = ZMQServer("tcp://127.0.0.1:*")
        with self.assertRaises(ValueError):
            server.register_handler("health", lambda d, c: None)

        @server.register_handler("x")
        def x(data, ctx):
            return 1

        self.assertEqual(server.handler_types(), ["health", "x"])
        server.close()
        server.close()  # idempotent, and never bound: no I/O happened

    def test_stop_returns_run_promptly(self):
        with running() as r:
            t0 = time.monotonic()
            r.server.stop()
            r.thread.join(5)
            self.assertFalse(r.thread.is_alive())
            self.assertLess(time.monotonic() - t0, 5)


    def test_a_client_used_from_two_threads_says_so_instead_of_losing_replies(self):
        # One DEALER per client: a second thread's request took the first thread's reply as "late" and dropped it,
        # so both timed out. The second thread is told at once; the first gets its reply.
        pending = queue.Queue()

        def later(data, ctx):
            reply = ctx.defer()
            pending.put(reply)
            return reply

        server = running(framework="demo")
        server.server.register_handler("later", later)
        with server as r:
            c = r.client()
            got = queue.Queue()
            first = threading.Thread(target=lambda: got.put(c.request("later", {})), daemon=True)
            first.start()
            reply = pending.get(timeout=10)  # the first thread is waiting for its reply
            with self.assertRaises(WorkerError) as ctx:
                c.request("later", {}, timeout_ms=200)
            self.assertEqual(ctx.exception.code, "bad_request")
            self.assertIn("not thread-safe", str(ctx.exception))
            reply.resolve({"first": True})
            self.assertEqual(got.get(timeout=10), {"first": True})
            first.join(10)
            self.assertEqual(c.late_replies, 0)

    def test_a_shared_memory_root_that_cannot_be_made_means_frames(self):
        # A robot laptop without /dev/shm, or a read-only one in a container: the arena cannot open, and the
        # request went out as an OSError instead of as frames.
        with tempfile.NamedTemporaryFile() as not_a_dir:
            server = running(framework="demo")
            server.server.register_handler("echo", lambda data, ctx: {"sum": int(data["image"].sum())})
            with server as r:
                c = r.client(shared_memory=ShmArena(os.path.join(not_a_dir.name, "shm")))
                self.assertEqual(c.request("echo", {"image": np.ones((64, 64, 3), np.uint8)}), {"sum": 64 * 64 * 3})
                self.assertEqual(c.shared_memory_state, "off")
                self.assertIsInstance(c.shm_fallback, WorkerError)
                self.assertIn(not_a_dir.name, str(c.shm_fallback))

if __name__ == "__main__":
    unittest.main()
