"""A minimal GR00T policy client written from the documented wire format (Isaac-GR00T's MsgSerializer and
PolicyClient; the package is not on PyPI), for test/peers/groot-door.test.ts. Runs on Debian's python3 (numpy, pyzmq,
msgpack from apt). Usage: groot_client.py <scenario> <tcp-endpoint> [api-token]; prints one JSON object.

Wire: one REQ frame of msgpack {"endpoint": str, "data"?: map, "api_token"?: str}; an ndarray travels as
{"__ndarray_class__": True, "as_npy": <bytes of np.save(allow_pickle=False)>}; the reply is msgpack, an error being
a map with "error"."""
import io
import json
import sys

import msgpack
import numpy as np
import zmq


def encode(obj):
    if isinstance(obj, np.ndarray):
        out = io.BytesIO()
        np.save(out, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": out.getvalue()}
    return obj


def decode(obj):
    if isinstance(obj, dict) and obj.get("__ndarray_class__"):
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    if isinstance(obj, dict) and "__ModalityConfig_class__" in obj:
        as_json = obj["as_json"]
        return json.loads(as_json) if isinstance(as_json, str) else as_json
    return obj


class GrootClient:
    def __init__(self, endpoint, api_token=None, timeout_ms=15000):
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.REQ)
        # The reference client never sets these; without them a lost reply would hang the test.
        self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.socket.setsockopt(zmq.SNDTIMEO, timeout_ms)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.api_token = api_token

    def call(self, endpoint, data=None, raw=None):
        request = {"endpoint": endpoint}
        if data is not None:
            request["data"] = data
        if self.api_token:
            request["api_token"] = self.api_token
        self.socket.send(raw if raw is not None else msgpack.packb(request, default=encode))
        return msgpack.unpackb(self.socket.recv(), object_hook=decode)

    def close(self):
        self.socket.close()


STATE_LEFT = np.array([[0.5, -1.0, 2.25, 0.0, 0.125, 3.0, -0.75]], dtype=np.float32)  # (T=1, 7)
STATE_WAIST = np.array([[0.1, 0.2, 0.3]], dtype=np.float64)  # (T=1, 3), float64 on purpose


def n15_observation(**extra):
    obs = {
        "video.ego_view": np.zeros((1, 64, 64, 3), dtype=np.uint8),
        "state.left_arm": STATE_LEFT,
        "state.waist": STATE_WAIST,
        "annotation.human.action.task_description": ["pick up the apple"],
    }
    obs.update(extra)
    return obs


def arrays(reply):
    if isinstance(reply, dict) and "error" not in reply:
        return {k: {"dtype": v.dtype.str, "shape": list(v.shape), "values": v.tolist()} for k, v in reply.items()}
    return reply


def basics(endpoint, token):
    client = GrootClient(endpoint, token)
    out = {
        "ping": client.call("ping"),
        "modality": client.call("get_modality_config"),
        "action": arrays(client.call("get_action", n15_observation())),
        # A request without an endpoint is get_action; Fortran-ordered state arrives transposed back to C order.
        "default_endpoint": arrays(client.call(None, None, raw=msgpack.packb({"data": n15_observation(**{"state.left_arm": np.asfortranarray(np.repeat(STATE_LEFT, 2, axis=0))})}, default=encode))),
        "kill": client.call("kill"),
        "ping_after_kill": client.call("ping"),
    }
    client.close()
    return out


def nested(endpoint, token):
    client = GrootClient(endpoint, token)
    obs = {
        "video": {"ego_view": np.zeros((1, 1, 64, 64, 3), dtype=np.uint8)},
        "state": {"left_arm": STATE_LEFT[None], "waist": STATE_WAIST[None]},
        "language": {"task": [["pick up the apple"]]},
    }
    reply = client.call("get_action", {"observation": obs, "options": None})
    client.close()
    actions, info = reply
    return {"actions": arrays(actions), "info": info}


def bad(endpoint, token):
    client = GrootClient(endpoint, token)
    errors = [
        client.call("get_action", {"video.ego_view": np.zeros((1, 64, 64, 3), dtype=np.uint8)}),  # no state
        client.call("get_action", n15_observation(**{"state.waist": STATE_WAIST.astype(np.float16)})),  # float16
        client.call("get_action", n15_observation(**{"state.waist": STATE_WAIST.astype(">f8")})),  # big-endian
        client.call("no_such_endpoint"),
        client.call(None, raw=b"\xc1 not msgpack"),
        client.call(None, raw=msgpack.packb([1, 2, 3])),
    ]
    after = arrays(client.call("get_action", n15_observation()))
    client.close()
    return {"errors": errors, "after": after}


def oversized(endpoint, token):
    client = GrootClient(endpoint, token)
    refused = client.call("get_action", n15_observation(blob=np.zeros(3 * 1024 * 1024, dtype=np.uint8)))
    after = arrays(client.call("get_action", n15_observation()))
    client.close()
    return {"refused": refused, "after": after}


def token(endpoint, token):
    out = {}
    for name, given in [("none", None), ("wrong", "not-the-token-at-all-000"), ("right", token)]:
        client = GrootClient(endpoint, given)
        out[name] = {"ping": client.call("ping"), "action": arrays(client.call("get_action", n15_observation()))}
        client.close()
    return out


if __name__ == "__main__":
    scenario, endpoint = sys.argv[1], sys.argv[2]
    api_token = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(globals()[scenario](endpoint, api_token)))
