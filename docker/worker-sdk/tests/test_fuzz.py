"""Property-based fuzzing of the codec (hypothesis, when installed; Debian: python3-hypothesis).

Property: any frames decode, or raise WorkerError with a code from the closed list; nothing else escapes (no
RecursionError, no TypeError), and a decoded request either passes check_request_header or fails it the same
way. Derandomized (a fixed seed per test) with a bounded number of examples, so a run is repeatable and short;
the database is off so nothing is written next to the sources.
"""
import json
import os
import tempfile
import unittest

import msgpack

from physical_ai_worker.codec import check_request_header, decode_message
from physical_ai_worker.protocol import ERROR_CODES, Limits, WorkerError

# Hypothesis keeps a cache (unicode tables) in a storage folder, ./.hypothesis by default: keep it out of the sources.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "physical-ai-worker-hypothesis"))

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - the test command installs python3-hypothesis
    given = None

# Small limits, so that the limit checks themselves are reached by generated inputs.
LIMITS = Limits(max_message_bytes=65536, max_frames=4, max_header_bytes=32768, max_depth=8)


def outcome(frames):
    """'ok', or the code of the WorkerError. Any other exception fails the test."""
    try:
        decoded = decode_message(frames, LIMITS)
        check_request_header(decoded.header)
        return "ok"
    except WorkerError as err:
        assert err.code in ERROR_CODES, err.code
        return err.code


if given is not None:
    FUZZ = settings(derandomize=True, max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8), st.binary(max_size=8))
    # Values nested up to ~12 levels: on both sides of max_depth = 8.
    values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=24)
    tensor_refs = st.fixed_dictionaries(
        {"__tensor__": st.just(True), "dtype": st.sampled_from(["float32", "uint8", "int64", "float16", ""]),
         "shape": st.lists(st.integers(-2, 5), max_size=3)},
        optional={"frame": st.integers(-1, 3), "data": st.binary(max_size=24)},
    )
    headers = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["inference", "health", ""]), st.integers(-1000, 1000))},
        optional={"data": st.one_of(values, st.dictionaries(st.text(max_size=3), tensor_refs, max_size=2)),
                  "version": st.one_of(st.integers(-1, 3), st.floats()), "timeout_ms": st.one_of(st.integers(-5, 5000000), st.floats()),
                  "request_id": st.text(max_size=4)},
    )
    # JSON-ish text: mostly structure characters, so that nesting, strings and escapes are exercised. Short pieces
    # repeated up to 1,500 times reach depths past Python's recursion limit, which uniform bytes almost never do.
    json_alphabet = '{}[]",:\\ 0123456789.-eEtrufalsn\u00e9'
    json_pieces = st.sampled_from(['[', '{"a":', "[1,", "]", "}", '"', "\\"]) | st.text(alphabet=json_alphabet, max_size=6)
    json_ish = st.lists(st.tuples(json_pieces, st.integers(1, 1500) | st.just(1)), max_size=6).map(
        lambda parts: "".join(piece * times for piece, times in parts).encode("utf-8")
    )
    # The same for bytes: runs such as 0x91 0x91 ... (msgpack arrays of one) nest deeply.
    byte_pieces = st.sampled_from([b"\x91", b"\x81\xa1a", b"\xdc\x00\x01", b"\xc0"]) | st.binary(max_size=4)
    byte_runs = st.lists(st.tuples(byte_pieces, st.integers(1, 1500) | st.just(1)), max_size=4).map(
        lambda parts: b"".join(piece * times for piece, times in parts)
    )

    def mutate(data, edits):
        """Applies (position, byte) overwrites and a truncation to bytes."""
        buf = bytearray(data)
        for pos, byte in edits[:-1]:
            if buf:
                buf[pos % len(buf)] = byte
        cut = edits[-1][0] if edits else len(buf)
        return bytes(buf[: cut % (len(buf) + 1)]) if edits else bytes(buf)

    edits = st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=6)

    class CodecFuzz(unittest.TestCase):
        @FUZZ
        @given(st.lists(st.binary(max_size=300) | byte_runs, max_size=5))
        def test_arbitrary_frames(self, frames):
            outcome(frames)

        @FUZZ
        @given(json_ish)
        def test_json_ish_text(self, text):
            outcome([b'{"type":"x","data":' + text])  # a valid start, so the parser reaches the generated part

        @FUZZ
        @given(values, st.sampled_from(["msgpack", "json"]))
        def test_nested_values_decode_or_are_too_deep(self, value, codec):
            header = {"type": "x", "data": value}
            if codec == "msgpack":
                frame = msgpack.packb(header, use_bin_type=True)
            else:
                try:
                    frame = json.dumps(header, allow_nan=False).encode()
                except (TypeError, ValueError):  # bytes or non-finite floats: not JSON
                    return
            result = outcome([frame])
            self.assertIn(result, ("ok", "bad_request", "too_large"))

        @FUZZ
        @given(headers, st.sampled_from(["msgpack", "json"]), edits, st.lists(st.binary(max_size=40), max_size=2))
        def test_mutated_requests(self, header, codec, changes, tensor_frames):
            if codec == "msgpack":
                frame = msgpack.packb(header, use_bin_type=True)
            else:
                frame = json.dumps(header, default=lambda b: list(b)).encode()
            outcome([mutate(frame, changes)] + tensor_frames)

else:

    @unittest.skip("hypothesis is not installed (Debian: apt-get install python3-hypothesis)")
    class CodecFuzz(unittest.TestCase):
        def test_skipped(self):
            pass


if __name__ == "__main__":
    unittest.main()
