#!/usr/bin/python3
"""A client that sends exactly what the original ROBOTIS client (``ZMQClient`` in ``zmq_communication.py``)
sends, written from its documented wire format: one JSON envelope ``{"type", "data", "timestamp",
"request_id"}`` per request on a REQ socket (``send_json``/``recv_json``), 5 s send/receive timeouts, LINGER 0,
a 1 s timeout for health, and a fresh socket after any timeout (a REQ socket that timed out cannot send again).

It works unchanged against the gateway's ZMQ front door, for whichever framework is the default:

    /usr/bin/python3 examples/original_client.py [tcp://127.0.0.1:5550]

As a module: ``from original_client import ZMQClient``.
"""
import sys
import time
import uuid

import zmq


class ZMQClient:
    """The original client's surface: inference, train, command, health_check (and close)."""

    def __init__(self, host="localhost", port=5555, timeout_ms=5000):
        self.address = "tcp://%s:%d" % (host, port)
        self.timeout_ms = timeout_ms
        self.context = zmq.Context()
        self.socket = None
        self._connect()

    def _connect(self):
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self.socket.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(self.address)

    def _reconnect(self):
        self.socket.close()
        self._connect()

    def send_request(self, request_type, data, timeout_ms=None):
        """Sends one envelope and returns the reply dict, or None when no reply came in time."""
        request = {
            "type": request_type,
            "data": data,
            "timestamp": time.time(),
            "request_id": str(uuid.uuid4()),
        }
        if timeout_ms is not None:
            self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        try:
            self.socket.send_json(request)
            return self.socket.recv_json()
        except zmq.Again:
            self._reconnect()  # also restores the default receive timeout
            return None
        finally:
            if timeout_ms is not None and self.socket is not None:
                self.socket.setsockopt(zmq.RCVTIMEO, self.timeout_ms)

    def inference(self, observation, **kwargs):
        return self.send_request("inference", {"observation": observation, **kwargs})

    def train(self, config):
        return self.send_request("train", config)

    def command(self, command, params=None):
        return self.send_request("command", {"command": command, "params": params or {}})

    def health_check(self):
        reply = self.send_request("health", {}, timeout_ms=1000)
        return reply is not None and reply.get("status") == "ok"

    def close(self):
        self.socket.close()
        self.context.term()


def main():
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5550"
    host, port = endpoint.replace("tcp://", "").rsplit(":", 1)
    client = ZMQClient(host, int(port))
    try:
        print("health_check: %s" % client.health_check())

        # The original example observation: an image as nested lists (H x W x 3) and the joint state.
        image = [[[x % 256, y % 256, 0] for x in range(32)] for y in range(32)]
        robot_state = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
        reply = client.inference({"image": image, "robot_state": robot_state}, instruction="pick")
        if reply is None or reply["status"] != "success":
            print("inference failed: %r" % (reply and reply.get("error")))
            return 1
        action = reply["result"]["action"]
        print("inference: status=%s action=%dx%d first_row=%s instruction=%s" % (
            reply["status"], len(action), len(action[0]), " ".join("%.4f" % v for v in action[0]),
            reply["result"].get("instruction")))

        reply = client.train({"dataset": "demo", "steps": 1})
        print("train: status=%s accepted=%s" % (reply["status"], reply["result"].get("accepted")))
        reply = client.command("reset", {"hard": True})
        print("command: status=%s command=%s" % (reply["status"], reply["result"].get("command")))

        bad = client.inference({"image": [[[0, 0, 300]]], "robot_state": robot_state})
        print("bad pixel: status=%s code=%s path=%s" % (bad["status"], bad["error"]["code"], bad["error"].get("path")))
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
