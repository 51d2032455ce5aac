"""openpi's own client (openpi-client 0.1.2, unmodified) asks the gateway's openpi door for a chunk from a real
LeRobot policy. Prints {"dtype", "shape", "values"} of `actions`. Usage:
openpi_act_client.py <ws-url> <front.u8> <hand.u8> <size> <state JSON> <prompt>"""
import json
import sys

import numpy as np
from openpi_client.websocket_client_policy import WebsocketClientPolicy

url, front, hand, size, state, prompt = sys.argv[1:7]
shape = (int(size), int(size), 3)
obs = {
    "observation/image": np.fromfile(front, dtype=np.uint8).reshape(shape),
    "observation/wrist_image": np.fromfile(hand, dtype=np.uint8).reshape(shape),
    "observation/state": np.array(json.loads(state), dtype=np.float32),
    "prompt": prompt,
}
actions = WebsocketClientPolicy(url).infer(obs)["actions"]
print(json.dumps({"dtype": actions.dtype.str, "shape": list(actions.shape), "values": actions.tolist()}))
