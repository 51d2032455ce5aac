"""SIGTERM ends run() even when the signal is delivered to another thread than the one polling the socket
(numpy's BLAS threads and torch's thread pools make that common), and the process exits 0."""
import os
import subprocess
import sys
import textwrap
import unittest

import physical_ai_worker

SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    from physical_ai_worker import ZMQServer
    server = ZMQServer("tcp://127.0.0.1:*")
    server.poll_interval_ms = None  # no periodic wake-up: only the signal can end the poll
    server.bind()

    def other_thread():
        time.sleep(0.3)
        signal.pthread_kill(threading.get_ident(), signal.{sig})  # the C handler runs on this thread

    threading.Thread(target=other_thread, daemon=True).start()
    server.run()
    server.close()
    print("stopped")
    """
)


class SignalTests(unittest.TestCase):
    def run_script(self, sig):
        # The child imports the same physical_ai_worker as this process: the source folder, or the pip install.
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(physical_ai_worker.__file__))))
        try:
            out = subprocess.run([sys.executable, "-c", SCRIPT.replace("{sig}", sig)], env=env, capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("run() did not return after %s delivered to another thread" % sig)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "stopped")

    def test_sigterm_on_another_thread_stops_run(self):
        self.run_script("SIGTERM")

    def test_sigint_on_another_thread_stops_run(self):
        self.run_script("SIGINT")


if __name__ == "__main__":
    unittest.main()
