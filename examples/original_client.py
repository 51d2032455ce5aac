#!/usr/bin/python3
"""A client of the original ROBOTIS design: JSON envelope over a ZMQ REQ socket, no `framework` field, the
original example observation {image, robot_state}, reading result.action. It works against the gateway's
ZMQ front door unchanged.

    /usr/bin/python3 examples/original_client.py [tcp://127.0.0.1:5550]
"""
import json
import sys
import time
import uuid

import zmq


def request(socket, msg_type, data):
    message = {"type": msg_type, "data": data, "timestamp": time.time(), "request_id": str(uuid.uuid4())}
    socket.send_string(json.dumps(message))
    reply = json.loads(socket.recv_string())
    if reply.get("request_id") != message["request_id"]:
        raise RuntimeError("reply for another request: %r" % reply.get("request_id"))
    return reply


def main():
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5550"
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 10000)
    socket.connect(endpoint)
    try:
        health = request(socket, "health", {})
        print("health: status=%s ready=%s" % (health["status"], health["result"]["ready"]))

        image = [[[x % 256, y % 256, 0] for x in range(32)] for y in range(32)]
        robot_state = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
        start = time.perf_counter()
        reply = request(socket, "inference", {"image": image, "robot_state": robot_state})
        elapsed_ms = (time.perf_counter() - start) * 1000
        if reply["status"] != "success":
            print("error: %s" % reply.get("error"))
            return 1
        action = reply["result"]["action"]
        print("inference: status=%s action=%dx%d first_row=%s (%.2f ms)" % (
            reply["status"], len(action), len(action[0]), " ".join("%.4f" % v for v in action[0]), elapsed_ms))

        bad = request(socket, "inference", {"image": image})
        print("missing state: status=%s code=%s path=%s" % (bad["status"], bad["error"]["code"], bad["error"].get("path")))
        return 0
    finally:
        socket.close()
        context.term()


if __name__ == "__main__":
    sys.exit(main())
