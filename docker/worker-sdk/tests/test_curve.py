"""CURVE in the SDK: key files as `physical-ai-gateway keys` (and pyzmq) write them, a CURVE server with and
without an allow list, and the clients it refuses. Real sockets on 127.0.0.1."""
import os
import shutil
import tempfile
import threading
import unittest

import zmq
import zmq.auth

from physical_ai_worker import WorkerError, ZMQClient, ZMQServer
from physical_ai_worker.curve import load_key_pair, load_public_keys


class Running(object):
    """A server running in a background thread; closes it and its clients on exit."""

    def __init__(self, **options):
        self.server = ZMQServer("tcp://127.0.0.1:*", **options)
        self.clients = []

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


class CurveTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="paig-curve-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.clients = os.path.join(self.dir, "clients")
        os.mkdir(self.clients)
        for name in ("worker", "gateway", "stranger"):
            public, secret = zmq.curve_keypair()
            with open(os.path.join(self.dir, name + ".key"), "w") as f:
                f.write('metadata\ncurve\n    public-key = "%s"\n    secret-key = "%s"\n' % (public.decode(), secret.decode()))
            with open(os.path.join(self.dir, name + ".pub"), "w") as f:
                f.write('metadata\ncurve\n    public-key = "%s"\n' % public.decode())
        shutil.copy(os.path.join(self.dir, "gateway.pub"), self.clients)

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def client(self, running, server, own, timeout_ms=5000):
        server_public, _ = load_key_pair(self.key(server))
        c = ZMQClient(running.endpoint, timeout_ms=timeout_ms, curve_server_key=server_public, curve_key_pair=load_key_pair(self.key(own)))
        running.clients.append(c)
        return c

    def test_key_files(self):
        public, secret = load_key_pair(self.key("gateway"))
        self.assertEqual((len(public), len(secret)), (40, 40))
        with self.assertRaisesRegex(ValueError, "holds no secret-key"):
            load_key_pair(os.path.join(self.dir, "gateway.pub"))
        self.assertEqual(list(load_public_keys(self.clients).values()), ["gateway.pub"])
        with self.assertRaisesRegex(ValueError, "no \\*.pub key files"):
            load_public_keys(tempfile.mkdtemp(dir=self.dir))

    def test_listed_client_is_served_and_others_are_refused(self):
        with Running(curve_secret_key_file=self.key("worker"), curve_clients_dir=self.clients) as running:
            self.assertEqual(running.server.curve_public_key, load_key_pair(self.key("worker"))[0].decode())
            self.assertTrue(self.client(running, "worker", "gateway").health()["ready"])
            # The worker's own pair is accepted (the healthcheck's way in).
            self.assertTrue(self.client(running, "worker", "worker").health()["ready"])
            with self.assertRaises(WorkerError) as refused:
                self.client(running, "worker", "stranger", timeout_ms=500).health()
            self.assertEqual(refused.exception.code, "timeout")
            plain = ZMQClient(running.endpoint, timeout_ms=500)
            running.clients.append(plain)
            with self.assertRaises(WorkerError):
                plain.health()
            self.assertTrue(self.client(running, "worker", "gateway").health()["ready"])

    def test_without_an_allow_list_any_client_with_the_server_key_is_served(self):
        with Running(curve_secret_key_file=self.key("worker")) as running:
            self.assertTrue(self.client(running, "worker", "stranger").health()["ready"])
            with self.assertRaises(WorkerError):
                self.client(running, "stranger", "gateway", timeout_ms=500).health()  # wrong server key

    def test_clients_dir_needs_a_key_file(self):
        with self.assertRaisesRegex(ValueError, "needs curve_secret_key_file"):
            ZMQServer("tcp://127.0.0.1:*", curve_clients_dir=self.clients)


if __name__ == "__main__":
    unittest.main()
