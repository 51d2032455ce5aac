"""A GR00T inference server for the gateway's GR00T backend tests, written from the wire format of Isaac-GR00T's
msgpack service (gr00t/eval/service.py after PR #329, N1.5 flat keys): one REP socket, requests served strictly one at
a time; msgpack with ndarrays as {"__ndarray_class__": True, "as_npy": <np.save bytes>} and ModalityConfigs as
{"__ModalityConfig_class__": True, "as_json": <JSON text>}; any exception → {"error": str(e)}; a wrong api_token →
{"error": "Unauthorized: Invalid API token"}. Debian's python3 with python3-zmq, python3-msgpack, python3-numpy.

Endpoints: ping, kill, get_modality_config, get_action. Policy (deterministic): groups left_arm (7) and left_hand (6);
action.<g>[k] = state.<g>[0] + 0.01 (k + 1), k < 16, float32 (16, width); needs video.ego_view uint8 (1,H,W,3) and
the task as [str]; sleeps `delay_s` when sent.

usage: groot_server.py <port|0> [api-token]   prints "LISTENING <port>" once bound.
"""

import io
import json
import sys
import time

import msgpack
import numpy as np
import zmq

GROUPS = {"left_arm": 7, "left_hand": 6}
HORIZON = 16
TASK = "annotation.human.action.task_description"


def modality(delta, keys):
    return {"__ModalityConfig_class__": True, "as_json": json.dumps({"delta_indices": delta, "modality_keys": keys})}


MODALITY = {
    "video": modality([0], ["video.ego_view"]),
    "state": modality([0], [f"state.{g}" for g in GROUPS]),
    "action": modality(list(range(HORIZON)), [f"action.{g}" for g in GROUPS]),
    "language": modality([0], [TASK]),
}


def encode(obj):
    if isinstance(obj, np.ndarray):
        out = io.BytesIO()
        np.save(out, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": out.getvalue()}
    return obj


def decode(obj):
    if not isinstance(obj, dict):
        return obj
    if "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    return obj


def get_action(obs):
    video = obs["video.ego_view"]
    if not (video.dtype == np.uint8 and video.ndim == 4 and video.shape[0] == 1 and video.shape[3] == 3):
        raise ValueError(f"video.ego_view must be uint8 (1,H,W,3), got {video.dtype} {video.shape}")
    task = obs[TASK]
    if not (isinstance(task, list) and len(task) == 1 and isinstance(task[0], str)):
        raise ValueError(f"{TASK} must be [str]")
    if "delay_s" in obs:
        time.sleep(float(obs["delay_s"]))
    out = {}
    for g, width in GROUPS.items():
        state = obs[f"state.{g}"]
        if state.shape != (1, width):
            raise ValueError(f"state.{g} must be (1, {width}), got {state.shape}")
        out[f"action.{g}"] = np.stack([state[0] + np.float32(0.01 * (k + 1)) for k in range(HORIZON)]).astype(np.float32)
    return out


def main():
    port = int(sys.argv[1])
    token = sys.argv[2] if len(sys.argv) > 2 else None
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    if port == 0:
        port = socket.bind_to_random_port("tcp://127.0.0.1")
    else:
        socket.bind(f"tcp://127.0.0.1:{port}")
    print(f"LISTENING {port}", flush=True)
    running = True
    while running:
        message = socket.recv()
        try:
            request = msgpack.unpackb(message, object_hook=decode)
            if token is not None and request.get("api_token") != token:
                raise PermissionError("Unauthorized: Invalid API token")
            endpoint = request.get("endpoint", "get_action")
            if endpoint == "ping":
                result = {"status": "ok", "message": "Server is running"}
            elif endpoint == "kill":
                running = False
                result = None
            elif endpoint == "get_modality_config":
                result = MODALITY
            elif endpoint == "get_action":
                print("REQUEST get_action", flush=True)  # lets a test act while the request is in the server
                result = get_action(request["data"])
            else:
                raise ValueError(f"Unknown endpoint: {endpoint}")
            socket.send(msgpack.packb(result, default=encode))
        except Exception as e:  # as the reference server: any failure is {"error": <message>}
            text = str(e) if isinstance(e, PermissionError) else (f"KeyError: {e}" if isinstance(e, KeyError) else str(e))
            socket.send(msgpack.packb({"error": text}))
    socket.close(linger=0)
    context.term()


if __name__ == "__main__":
    main()
