"""physical_ai_worker: the Python worker SDK of physical-ai-gateway (wire protocol v1, proto-json/v1).

    from physical_ai_worker import ZMQServer, WorkerError

    server = ZMQServer("tcp://127.0.0.1:5555", framework="lerobot", model="act", ready=False)
    server.register_handler("inference", lambda data, ctx: {"action": run_policy(data)})
    server.set_ready(True)
    server.run()
    server.close()
"""
import logging

from .client import ZMQClient
from .codec import CODECS, Decoded, EncodeError, as_array, decode_message, encode_message
from .demo_policy import demo_action, demo_policy, make_demo_handler
from .direct import DirectClient
from .jobs import JobRunner, JobSpec, progress_writer
from .protocol import (
    DEFAULT_LIMITS,
    DTYPES,
    ERROR_CODES,
    PROTOCOL_VERSION,
    SDK_NAME,
    SDK_VERSION,
    Limits,
    WorkerError,
)
from .server import NO_REPLY, DeferredReply, RequestContext, ZMQServer
from .shm_arena import Placement, ShmArena

__version__ = SDK_VERSION

# A library does not configure logging; the CLI does. Without this, warnings would go to stderr via lastResort.
logging.getLogger("physical_ai_worker").addHandler(logging.NullHandler())

__all__ = [
    "CODECS",
    "DEFAULT_LIMITS",
    "DTYPES",
    "ERROR_CODES",
    "NO_REPLY",
    "PROTOCOL_VERSION",
    "SDK_NAME",
    "SDK_VERSION",
    "Decoded",
    "DeferredReply",
    "DirectClient",
    "EncodeError",
    "JobRunner",
    "JobSpec",
    "Limits",
    "Placement",
    "RequestContext",
    "ShmArena",
    "WorkerError",
    "ZMQClient",
    "ZMQServer",
    "as_array",
    "decode_message",
    "demo_action",
    "demo_policy",
    "encode_message",
    "make_demo_handler",
    "progress_writer",
]
