"""Round trips of openpi's own client (openpi-client, unmodified WebsocketClientPolicy) against `url`: the generic
observation (two 224x224x3 uint8 images, 8 float32 state values, a prompt). Prints one JSON object of latencies, ms.
usage: openpi_roundtrip.py <ws-url> <n> [warmup]"""
import json
import statistics
import sys
import time

import numpy as np
from openpi_client.websocket_client_policy import WebsocketClientPolicy

url, n = sys.argv[1], int(sys.argv[2])
warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 20
rng = np.random.default_rng(7)
obs = {
    "observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
    "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
    "observation/state": np.arange(8, dtype=np.float32) / 8,
    "prompt": "pick up the fork",
}
policy = WebsocketClientPolicy(url)
for _ in range(warmup):
    policy.infer(obs)
samples = []
for _ in range(n):
    start = time.perf_counter()
    result = policy.infer(obs)
    samples.append((time.perf_counter() - start) * 1000)
    assert result["actions"].shape == (10, 8), result["actions"].shape
samples.sort()
pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(json.dumps({"n": n, "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": statistics.fmean(samples)}))
