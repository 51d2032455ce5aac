"""An openpi policy server for the gateway's openpi backend tests, written to the stock one's protocol
(openpi's src/openpi/serving/websocket_policy_server.py, which is not on PyPI: the `openpi` name there is an empty
placeholder) with openpi-client's own serialisation (openpi_client.msgpack_numpy) and `websockets`, like the stock one:
metadata frame first; each msgpack frame answered with the policy's dict plus server_timing; a failure sends the
traceback as a TEXT frame and closes with 1011; GET /healthz → 200 OK.

Policy (deterministic): needs observation/image uint8 (H,W,3) and observation/state (D,);
actions[k] = state + 0.01 (k + 1), k < 10, float32 (10, D); echoes `prompt`; sleeps `delay_s` when sent.

usage: openpi_server.py <port|0> [metadata-json]   prints "LISTENING <port>" once it serves.
"""

import asyncio
import http
import json
import sys
import time
import traceback

import numpy as np
import websockets
import websockets.asyncio.server as _server
import websockets.frames
from openpi_client import msgpack_numpy

HORIZON = 10


def infer(obs):
    image = obs["observation/image"]
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"observation/image must be uint8 (H,W,3), got {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    state = np.asarray(obs["observation/state"], dtype=np.float32)
    if "delay_s" in obs:
        time.sleep(float(obs["delay_s"]))  # the stock server runs the policy inline, blocking its loop, as here
    start = time.monotonic()
    actions = np.stack([state + np.float32(0.01 * (k + 1)) for k in range(HORIZON)]).astype(np.float32)
    return {"actions": actions, "prompt": obs.get("prompt"), "policy_timing": {"infer_ms": (time.monotonic() - start) * 1000}}


async def handler(websocket, metadata):
    packer = msgpack_numpy.Packer()
    await websocket.send(packer.pack(metadata))
    prev_total_time = None
    while True:
        try:
            start_time = time.monotonic()
            obs = msgpack_numpy.unpackb(await websocket.recv())
            print("REQUEST infer", flush=True)  # lets a test act while the request is in the server
            infer_time = time.monotonic()
            action = infer(obs)
            infer_time = time.monotonic() - infer_time
            action["server_timing"] = {"infer_ms": infer_time * 1000}
            if prev_total_time is not None:
                action["server_timing"]["prev_total_ms"] = prev_total_time * 1000
            await websocket.send(packer.pack(action))
            prev_total_time = time.monotonic() - start_time
        except websockets.ConnectionClosed:
            break
        except Exception:
            await websocket.send(traceback.format_exc())
            await websocket.close(code=websockets.frames.CloseCode.INTERNAL_ERROR, reason="Internal server error. Traceback included in previous frame.")
            raise


def health_check(connection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


async def main():
    port = int(sys.argv[1])
    metadata = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    async with _server.serve(lambda ws: handler(ws, metadata), "127.0.0.1", port, compression=None, max_size=None, process_request=health_check) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"LISTENING {bound}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
