"""A GR00T N1.5 policy client (test/peers/groot_client.py's wire code) asks the gateway's GR00T door for a chunk from
a real LeRobot policy, with GR00T's flat keys: video.<cam> (1,H,W,3) uint8, state.<group> (1,D), the task as [str].
Prints {"keys", "shape", "values"} of the reply's action.arm. Runs on Debian's python3.
Usage: groot_act_client.py <tcp-endpoint> <front.u8> <hand.u8> <size> <state JSON> <task>"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from groot_client import GrootClient  # noqa: E402

endpoint, front, hand, size, state, task = sys.argv[1:7]
shape = (1, int(size), int(size), 3)
client = GrootClient(endpoint)
try:
    reply = client.call("get_action", {
        "video.front": np.fromfile(front, dtype=np.uint8).reshape(shape),
        "video.hand": np.fromfile(hand, dtype=np.uint8).reshape(shape),
        "state.arm": np.array([json.loads(state)], dtype=np.float32),
        "annotation.human.action.task_description": [task],
    })
finally:
    client.close()
if "error" in reply:
    print(json.dumps({"error": reply["error"]}))
else:
    arm = reply["action.arm"]
    print(json.dumps({"keys": sorted(reply.keys()), "shape": list(arm.shape), "values": arm.tolist()}))
