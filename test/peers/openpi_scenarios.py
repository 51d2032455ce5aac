"""Drives the gateway's openpi door with openpi's own client (openpi-client 0.1.2, unmodified) and prints one JSON
object with what it saw, for test/peers/openpi-door.test.ts to check. Usage: openpi_scenarios.py <scenario> <ws-url> [api-key]

Every scenario sends real numpy arrays through WebsocketClientPolicy; nothing here re-implements the wire format."""
import json
import sys

import numpy as np
import websockets.exceptions
from openpi_client.action_chunk_broker import ActionChunkBroker
from openpi_client.websocket_client_policy import WebsocketClientPolicy

STATE = np.array([0.5, -1.0, 2.25, 0.0, 0.125, 3.0, -0.75, 1.0], dtype=np.float32)
IMAGE = np.zeros((224, 224, 3), dtype=np.uint8)


def actions_of(result):
    actions = result["actions"]
    return {"dtype": actions.dtype.str, "shape": list(actions.shape), "values": actions.tolist()}


def error_of(err):
    # openpi's client raises RuntimeError("Error in inference server:\n<text frame>"); ours is a JSON error body.
    text = str(err).split("\n", 1)[1]
    return json.loads(text)["error"]


def generic(url, key):
    policy = WebsocketClientPolicy(url, api_key=key)
    obs = {"observation/image": IMAGE, "observation/wrist_image": IMAGE, "observation/state": STATE, "prompt": "pick up the fork"}
    first = policy.infer(obs)
    second = policy.infer(obs)
    return {
        "metadata": policy.get_server_metadata(),
        "first": actions_of(first),
        "keys": sorted(first.keys()),
        "instruction": first.get("instruction"),
        "policy_infer_ms_is_number": isinstance(first["policy_timing"]["infer_ms"], float),
        "first_server_timing": sorted(first["server_timing"].keys()),
        "second_server_timing": sorted(second["server_timing"].keys()),
        "second_equal": second["actions"].tolist() == first["actions"].tolist(),
    }


def droid(url, key):
    policy = WebsocketClientPolicy(url, api_key=key)
    joints = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])  # float64, as DROID's robot reads them
    obs = {
        "observation/exterior_image_1_left": IMAGE,
        "observation/wrist_image_left": IMAGE,
        "observation/joint_position": joints,
        "observation/gripper_position": np.array([1.0]),
        "prompt": "open the drawer",
    }
    result = policy.infer(obs)
    return {"metadata": policy.get_server_metadata(), "actions": actions_of(result), "instruction": result["instruction"]}


def aloha(url, key):
    policy = WebsocketClientPolicy(url, api_key=key)
    chw = np.zeros((3, 224, 224), dtype=np.uint8)
    obs = {"state": np.arange(14, dtype=np.float32) / 10, "images": {"cam_high": chw, "cam_left_wrist": chw}, "prompt": "fold"}
    return {"actions": actions_of(policy.infer(obs))}


def broker(url, key):
    # openpi's client-side chunking: one request per 16 steps, each step one row of the chunk.
    policy = ActionChunkBroker(WebsocketClientPolicy(url, api_key=key), action_horizon=16)
    obs = {"observation/image": IMAGE, "observation/state": STATE, "prompt": "wave"}
    steps = [policy.infer(obs)["actions"].tolist() for _ in range(17)]
    return {"steps": steps}


def bad_then_good(url, key):
    policy = WebsocketClientPolicy(url, api_key=key)
    errors = []
    bad = [
        {"observation/image": IMAGE, "prompt": "no state"},  # the demo policy needs a state
        {"observation/state": STATE.astype(np.float16)},  # float16: no typed array for it
        {"observation/state": STATE.astype(">f4")},  # big-endian
        {"observation/state": STATE, "observation/image": np.zeros((224, 224), dtype=np.uint8)},  # not [H,W,3]
    ]
    for obs in bad:
        try:
            policy.infer(obs)
            errors.append(None)
        except RuntimeError as err:
            errors.append(error_of(err))
    good = policy.infer({"observation/state": STATE})  # the same connection still serves
    return {"errors": errors, "after": actions_of(good)}


def oversized(url, key):
    policy = WebsocketClientPolicy(url, api_key=key)
    try:
        policy.infer({"observation/state": STATE, "blob": np.zeros(4 * 1024 * 1024, dtype=np.uint8)})
        refused = None
    except websockets.exceptions.ConnectionClosed as err:
        refused = {"close_code": err.rcvd.code if err.rcvd else None}
    fresh = WebsocketClientPolicy(url, api_key=key)  # a new connection is served
    return {"refused": refused, "after": actions_of(fresh.infer({"observation/state": STATE}))}


def connect(url, key):
    try:
        policy = WebsocketClientPolicy(url, api_key=key)
    except websockets.exceptions.InvalidStatus as err:
        return {"status": err.response.status_code}
    return {"status": 101, "actions": actions_of(policy.infer({"observation/state": STATE}))}


if __name__ == "__main__":
    scenario, url = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(globals()[scenario.replace("-", "_")](url, key)))
