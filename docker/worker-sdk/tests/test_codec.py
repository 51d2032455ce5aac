"""Codec unit tests: golden round trips for the three codecs, zero-copy views, and every bad input."""
import json
import unittest

import msgpack
import numpy as np

from physical_ai_worker.codec import (
    EncodeError,
    as_array,
    check_request_header,
    decode_message,
    encode_message,
    frame_buffer,
    view_tensor,
)
from physical_ai_worker.protocol import DTYPES, Limits, WorkerError


def addr(a):
    return a.__array_interface__["data"][0]


def roundtrip(header, codec):
    frames = [bytes(f) for f in encode_message(header, codec)]  # bytes: as a peer would receive them
    return decode_message(frames)


GOLDEN = [
    ("0-d float64", np.array(3.5, dtype=np.float64)),
    ("0-d int64", np.array(-7, dtype=np.int64)),
    ("NaN/inf float32", np.array([np.nan, np.inf, -np.inf, 1.5, -0.0], dtype=np.float32)),
    ("int16 3-d", np.arange(-12, 12, dtype=np.int16).reshape(2, 3, 4)),
    ("bool", np.array([[True, False, True], [False, False, True]])),
    ("uint8 image", (np.arange(224 * 224 * 3) % 251).astype(np.uint8).reshape(224, 224, 3)),
    ("uint64 big", np.array([0, 2**63 + 5, 2**64 - 1], dtype=np.uint64)),
    ("int8", np.array([-128, 0, 127], dtype=np.int8)),
    ("uint16", np.array([0, 65535], dtype=np.uint16)),
    ("uint32", np.array([0, 2**32 - 1], dtype=np.uint32)),
    ("int32", np.array([-(2**31), 2**31 - 1], dtype=np.int32)),
    ("float64 2-d", np.linspace(-1, 1, 12).reshape(3, 4)),
    ("empty [0, 3]", np.zeros((0, 3), dtype=np.float32)),
    ("rank 8", np.ones((1, 2, 1, 2, 1, 2, 1, 2), dtype=np.float32)),
]


def same(a, b):
    """Equal dtype, shape and values, NaN == NaN (JSON: nulls stand for non-finite floats)."""
    if isinstance(b, np.ndarray):
        return a.dtype == b.dtype.newbyteorder("=") and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return False


class GoldenRoundTrip(unittest.TestCase):
    def test_binary_and_msgpack_round_trip_every_case_exactly(self):
        for codec in ("binary", "msgpack"):
            for name, arr in GOLDEN:
                with self.subTest(codec=codec, case=name):
                    out = roundtrip({"type": "t", "data": {"x": arr}}, codec)
                    got = out.header["data"]["x"]
                    self.assertIsInstance(got, np.ndarray)
                    self.assertEqual(got.shape, arr.shape)
                    self.assertEqual(got.dtype.newbyteorder("<"), arr.dtype.newbyteorder("<"))
                    self.assertTrue(np.array_equal(got, arr, equal_nan=arr.dtype.kind == "f"))
                    self.assertEqual(out.codec, codec)

    def test_json_round_trip_gives_nested_lists(self):
        for name, arr in GOLDEN:
            with self.subTest(case=name):
                out = roundtrip({"type": "t", "data": {"x": arr}}, "json")
                got = out.header["data"]["x"]
                self.assertEqual(out.codec, "json")
                if arr.ndim == 0:
                    self.assertEqual(got, arr.item())
                    continue
                self.assertIsInstance(got, list)
                if arr.dtype.kind == "f":
                    finite = np.isfinite(arr)
                    back = np.array([float("nan") if v is None else v for v in np.array(got, dtype=object).ravel()], dtype=np.float64).reshape(arr.shape)
                    self.assertTrue(np.array_equal(back[finite], arr[finite].astype(np.float64)))
                    self.assertTrue(all(v is None for v in np.array(got, dtype=object).ravel()[~finite.ravel()]))
                else:
                    self.assertTrue(np.array_equal(np.array(got, dtype=arr.dtype).reshape(arr.shape), arr))

    def test_nested_dicts_and_lists_of_arrays(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.array([1, 2, 3], dtype=np.int16)
        header = {
            "type": "t",
            "request_id": "r1",
            "data": {
                "outer": {"inner": {"deep": a, "text": "hi", "n": 3, "f": 0.25, "none": None, "flag": True}},
                "arrays": [a, b, {"c": b}],
                "numbers": [1, 2.5, 3],
                "tuple": (1, 2),
                "np_scalar": np.float32(1.5),
            },
        }
        for codec in ("binary", "msgpack", "json"):
            with self.subTest(codec=codec):
                data = roundtrip(header, codec).header["data"]
                conv = (lambda v: np.array(v)) if codec == "json" else (lambda v: v)
                self.assertTrue(np.array_equal(conv(data["outer"]["inner"]["deep"]), a))
                self.assertEqual(data["outer"]["inner"]["text"], "hi")
                self.assertEqual(data["outer"]["inner"]["n"], 3)
                self.assertEqual(data["outer"]["inner"]["f"], 0.25)
                self.assertIsNone(data["outer"]["inner"]["none"])
                self.assertIs(data["outer"]["inner"]["flag"], True)
                self.assertTrue(np.array_equal(conv(data["arrays"][0]), a))
                self.assertTrue(np.array_equal(conv(data["arrays"][1]), b))
                self.assertTrue(np.array_equal(conv(data["arrays"][2]["c"]), b))
                self.assertEqual(data["numbers"], [1, 2.5, 3])
                self.assertEqual(data["tuple"], [1, 2])
                self.assertEqual(data["np_scalar"], 1.5)

    def test_binary_frames_follow_placeholder_order(self):
        a = np.arange(3, dtype=np.float32)
        b = np.arange(4, dtype=np.uint8)
        frames = encode_message({"x": a, "y": [b]}, "binary")
        header = msgpack.unpackb(frames[0])
        self.assertEqual(header["x"], {"__tensor__": True, "dtype": "float32", "shape": [3], "frame": 1})
        self.assertEqual(header["y"][0], {"__tensor__": True, "dtype": "uint8", "shape": [4], "frame": 2})
        self.assertEqual(bytes(frames[1]), a.tobytes())
        self.assertEqual(bytes(frames[2]), b.tobytes())

    def test_golden_bytes_of_a_binary_header(self):
        # The same bytes @msgpack/msgpack writes for this header (keys in insertion order, ints as fixint).
        frames = encode_message({"status": "success", "result": {"action": np.zeros((16, 14), np.float32)}}, "binary")
        self.assertEqual(
            bytes(frames[0]).hex(),
            "82a6737461747573a773756363657373a6726573756c7481a6616374696f6e84aa5f5f74656e736f725f5fc3"
            "a56474797065a7666c6f61743332a5736861706592100ea56672616d6501",
        )
        self.assertEqual(len(frames[1]), 16 * 14 * 4)

    def test_json_header_is_plain_json_with_null_for_non_finite(self):
        frames = encode_message({"x": np.array([1.0, np.nan], np.float32), "y": float("inf")}, "json")
        self.assertEqual(len(frames), 1)
        self.assertEqual(json.loads(bytes(frames[0])), {"x": [1.0, None], "y": None})

    def test_big_endian_and_non_contiguous_arrays_are_sent_as_little_endian_c_order(self):
        base = np.arange(24, dtype=np.float32).reshape(4, 6)
        strided = base[:, ::2]
        big = np.arange(5, dtype=">i4")
        out = roundtrip({"s": strided, "b": big, "t": base.T}, "binary").header
        self.assertTrue(np.array_equal(out["s"], strided))
        self.assertTrue(np.array_equal(out["b"], big))
        self.assertTrue(np.array_equal(out["t"], base.T))

    def test_unsupported_values_raise_encode_error(self):
        for bad in (np.zeros(2, np.float16), np.zeros(2, np.complex64), np.array(["a"]), object(), {1: 2}):
            with self.subTest(value=repr(bad)[:40]):
                with self.assertRaises(EncodeError):
                    encode_message({"x": bad}, "binary")


class ZeroCopy(unittest.TestCase):
    def test_decoded_arrays_are_views_on_the_received_frames(self):
        img = (np.arange(224 * 224 * 3) % 256).astype(np.uint8).reshape(224, 224, 3)
        state = np.arange(14, dtype=np.float32)
        frames = [bytearray(f) for f in encode_message({"type": "inference", "data": {"images": {"cam": img}, "state": state}}, "binary")]
        out = decode_message(frames)
        for arr, frame in ((out.header["data"]["images"]["cam"], frames[1]), (out.header["data"]["state"], frames[2])):
            raw = np.frombuffer(frame, dtype=np.uint8)
            self.assertFalse(arr.flags.owndata)
            self.assertIsNotNone(arr.base)
            self.assertEqual(addr(arr), addr(raw))
            self.assertTrue(np.shares_memory(arr, raw))
        frames[2][0:4] = np.float32(42).tobytes()  # writing the frame shows through the view
        self.assertEqual(out.header["data"]["state"][0], 42)
        self.assertEqual(out.copied_bytes, 0)

    def test_encoded_frames_are_views_on_the_arrays(self):
        action = np.arange(16 * 14, dtype=np.float32).reshape(16, 14)
        frames = encode_message({"result": {"action": action}}, "binary")
        sent = np.frombuffer(frames[1], dtype=np.uint8)
        self.assertEqual(addr(sent), addr(action))
        self.assertTrue(np.shares_memory(sent, action))

    def test_misaligned_bytes_stay_a_view_unless_align_is_asked_then_are_copied_once_and_counted(self):
        raw = bytearray(1 + 14 * 4)
        raw[1:] = np.arange(14, dtype=np.float32).tobytes()
        view = memoryview(raw)[1:]
        arr, copied = view_tensor("float32", [14], view, "/x")
        self.assertEqual(copied, 0)
        self.assertFalse(arr.flags.owndata)
        self.assertFalse(arr.flags.aligned)
        self.assertTrue(np.array_equal(arr, np.arange(14, dtype=np.float32)))  # numpy reads unaligned data right
        arr, copied = view_tensor("float32", [14], view, "/x", align=True)
        self.assertEqual(copied, 56)
        self.assertTrue(arr.flags.owndata)
        self.assertTrue(arr.flags.aligned)
        self.assertTrue(np.array_equal(arr, np.arange(14, dtype=np.float32)))
        arr8, copied8 = view_tensor("uint8", [56], view, "/x", align=True)
        self.assertEqual(copied8, 0)
        self.assertFalse(arr8.flags.owndata)
        frames = [msgpack.packb({"type": "t", "data": {"__tensor__": True, "dtype": "float32", "shape": [14], "frame": 1}}), view]
        self.assertEqual(decode_message(frames).copied_bytes, 0)
        self.assertEqual(decode_message(frames, align=True).copied_bytes, 56)

    def test_frame_buffer_accepts_bytes_bytearray_memoryview(self):
        for f in (b"ab", bytearray(b"ab"), memoryview(b"ab")):
            self.assertEqual(frame_buffer(f).tobytes(), b"ab")


def packed(header, *tensors):
    return [msgpack.packb(header, use_bin_type=True)] + list(tensors)


def tref(dtype="float32", shape=(2,), frame=1, **extra):
    ref = {"__tensor__": True, "dtype": dtype, "shape": list(shape), "frame": frame}
    ref.update(extra)
    return ref


class BadInput(unittest.TestCase):
    CASES = [
        ("no frames", [], "bad_request", "empty message"),
        ("invalid msgpack", [b"\xc1"], "bad_request", "not valid msgpack"),
        ("truncated msgpack", [b"\x82\xa1a"], "bad_request", "not valid msgpack"),
        ("trailing bytes", [msgpack.packb({"type": "x"}) + b"\x00"], "bad_request", "not valid msgpack"),
        ("msgpack ext", [msgpack.packb({"type": msgpack.ExtType(5, b"x")})], "bad_request", "not valid msgpack"),
        ("invalid JSON", [b'{"type": '], "bad_request", "not valid JSON"),
        ("invalid UTF-8 JSON", [b'{"type": "\xff"}'], "bad_request", "not valid UTF-8"),
        ("header not a map", [msgpack.packb([1, 2])], "bad_request", "must be a map"),
        ("unknown dtype", packed({"type": "t", "data": tref("float16")}, b"\0" * 4), "bad_request", "unknown dtype \"float16\""),
        ("byte length", packed({"type": "t", "data": tref("float32", (14,))}, b"\0" * 55), "bad_request", "needs 56 bytes, got 55"),
        ("negative shape", packed({"type": "t", "data": tref("uint8", (-1,))}, b""), "bad_request", "shape must be"),
        ("rank 9", packed({"type": "t", "data": tref("uint8", (1,) * 9)}, b"\0"), "bad_request", "shape must be"),
        ("missing frame", packed({"type": "t", "data": tref(frame=2)}, b"\0" * 8), "bad_request", "refers to frame 2 but the message has 1 tensor frames"),
        ("unreferenced frame", packed({"type": "t", "data": tref()}, b"\0" * 8, b"\0"), "bad_request", "message has 2 tensor frames but the header references 1"),
        ("no tensor frame", packed({"type": "t"}, b"\0"), "bad_request", "message has 1 tensor frames but the header references 0"),
        ("frame twice", packed({"type": "t", "data": [tref(), tref()]}, b"\0" * 8), "bad_request", "referenced twice"),
        ("frame 0", packed({"type": "t", "data": tref(frame=0)}, b"\0" * 8), "bad_request", "'frame' must be an integer >= 1"),
        ("frame and data", packed({"type": "t", "data": tref(data=b"\0" * 8)}, b"\0" * 8), "bad_request", "either 'frame' or 'data'"),
        ("neither frame nor data", packed({"type": "t", "data": {"__tensor__": True, "dtype": "uint8", "shape": [1]}}), "bad_request", "needs 'frame'"),
        ("inline byte length", packed({"type": "t", "data": {"__tensor__": True, "dtype": "int16", "shape": [2], "data": b"\0" * 3}}), "bad_request", "needs 4 bytes, got 3"),
    ]

    def test_each_bad_input_gets_a_typed_error_naming_it(self):
        for name, frames, code, text in self.CASES:
            with self.subTest(case=name):
                with self.assertRaises(WorkerError) as caught:
                    decode_message(frames)
                self.assertEqual(caught.exception.code, code)
                self.assertIn(text, caught.exception.message)

    def test_paths_name_the_tensor(self):
        with self.assertRaises(WorkerError) as caught:
            decode_message(packed({"type": "t", "data": {"images": {"cam": tref("float16")}}}, b"\0" * 4))
        self.assertEqual(caught.exception.path, "/data/images/cam")

    def test_limits_give_too_large(self):
        limits = Limits(max_message_bytes=1000, max_frames=3, max_header_bytes=100)
        for name, frames, text in (
            ("message", packed({"type": "t", "data": tref("uint8", (1000,))}, b"\0" * 1000), "message is"),
            ("frames", [msgpack.packb({"type": "t"})] + [b"\0"] * 3, "frames; the limit is 3"),
            ("header", [msgpack.packb({"type": "t", "pad": "x" * 200})], "header is"),
        ):
            with self.subTest(limit=name):
                with self.assertRaises(WorkerError) as caught:
                    decode_message(frames, limits)
                self.assertEqual(caught.exception.code, "too_large")
                self.assertIn(text, caught.exception.message)

    def test_request_header_checks(self):
        good = {"type": "inference", "request_id": "r", "timestamp": 1.5, "version": 1, "timeout_ms": 10,
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=b", "framework": "demo", "extra": 1}
        check_request_header(good)
        for field, value in (("type", ""), ("type", 3), ("type", "x" * 65), ("request_id", 5), ("request_id", ""), ("timestamp", "now"),
                             ("version", 0), ("version", 1.5), ("version", 2), ("version", True), ("timeout_ms", 0), ("timeout_ms", -1),
                             ("timeout_ms", float("inf")), ("timeout_ms", float("nan")), ("timeout_ms", 3600001), ("timeout_ms", 2**70), ("timeout_ms", True),
                             ("traceparent", "nope"), ("framework", ""), ("tracestate", 1)):
            with self.subTest(field=field, value=value):
                bad = dict(good)
                bad[field] = value
                with self.assertRaises(WorkerError) as caught:
                    check_request_header(bad)
                self.assertEqual(caught.exception.code, "bad_request")
                self.assertEqual(caught.exception.path, "/" + field)
        with self.assertRaises(WorkerError) as caught:
            check_request_header({"data": {}})
        self.assertIn("'type'", caught.exception.message)
        check_request_header({"type": "inference", "timeout_ms": 3600000})
        check_request_header({"type": "inference"})  # no version, no timeout: clients of the original design


def _msgpack_type_x(inner):
    """msgpack bytes of {"type": "x", "data": <inner bytes>}."""
    return b"\x82\xa4type\xa1x\xa4data" + inner


class Nesting(unittest.TestCase):
    """A header nested deeper than Limits.max_depth is a bad_request, whatever the codec, never a RecursionError."""

    def assertTooDeep(self, frame, limits=None):
        with self.assertRaises(WorkerError) as caught:
            decode_message([frame], limits or Limits())
        self.assertEqual(caught.exception.code, "bad_request")
        self.assertIn("nested deeper", caught.exception.message)

    def test_hostile_depths(self):
        self.assertTooDeep(b'{"type":"x","data":' + b"[" * 100000 + b"]" * 100000 + b"}")
        self.assertTooDeep(b'{"type":"x","data":' + b"[" * 100000)  # unclosed
        self.assertTooDeep(_msgpack_type_x(b"\x91" * 100000 + b"\xc0"))  # past msgpack's own stack
        self.assertTooDeep(_msgpack_type_x(b"\x91" * 1000 + b"\xc0"))  # within it, past Python's recursion limit
        self.assertTooDeep(_msgpack_type_x(b"\x81\xa1a" * 1000 + b"\xc0"))

    def test_exactly_at_the_limit_decodes_one_more_does_not(self):
        limit = Limits().max_depth
        for levels, ok in ((limit - 1, True), (limit, False)):
            for frame in (b'{"type":"x","data":' + b"[" * levels + b"]" * levels + b"}", _msgpack_type_x(b"\x91" * levels + b"\xc0"),
                          _msgpack_type_x(b"\x81\xa1a" * levels + b"\xc0")):
                with self.subTest(levels=levels, frame=frame[:24]):
                    if ok:
                        self.assertEqual(decode_message([frame]).header["type"], "x")
                    else:
                        self.assertTooDeep(frame)

    def test_empty_containers_count_and_the_limit_is_configurable(self):
        two = Limits(max_depth=2)
        decode_message([b'{"a":[]}'], two)
        self.assertTooDeep(b'{"a":[[]]}', two)
        decode_message([msgpack.packb({"a": []})], two)
        self.assertTooDeep(msgpack.packb({"a": [[]]}), two)
        self.assertTooDeep(msgpack.packb({"a": {"b": {}}}), two)

    def test_brackets_in_json_strings_do_not_count(self):
        text = json.dumps({"type": "x", "s": "[" * 500 + ' \\" ' + "{" * 500 + '"\\', "after": [[1]]}).encode()
        self.assertEqual(decode_message([text]).header["type"], "x")
        self.assertTooDeep(text, Limits(max_depth=2))  # `after` is at depth 3

    def test_limits_refuse_a_depth_outside_1_to_the_ceiling(self):
        from physical_ai_worker.protocol import MAX_DEPTH_CEILING

        for bad in (0, -1, MAX_DEPTH_CEILING + 1, True, 1.5):
            with self.subTest(max_depth=bad):
                with self.assertRaises(ValueError):
                    Limits(max_depth=bad)
        self.assertEqual(Limits(max_depth=MAX_DEPTH_CEILING).max_depth, MAX_DEPTH_CEILING)

    def test_invalid_utf8_json_is_a_bad_request(self):
        with self.assertRaises(WorkerError) as caught:
            decode_message([b'{"type":"x","s":"\xff\xfe"}'])
        self.assertEqual(caught.exception.code, "bad_request")


class AsArray(unittest.TestCase):
    def test_matching_array_is_returned_as_is(self):
        a = np.zeros(3, np.float32)
        self.assertIs(as_array(a, "float32"), a)

    def test_lists_are_converted_and_wrong_dtypes_refused(self):
        self.assertEqual(as_array([[1, 2], [3, 4]], "float32").dtype, np.float32)
        for bad in (np.zeros(3, np.float64), [[1, 2], [3]], "x"):
            with self.subTest(value=repr(bad)):
                with self.assertRaises(WorkerError) as caught:
                    as_array(bad, "float32", "/data/state")
                self.assertEqual(caught.exception.path, "/data/state")

    def test_every_dtype_is_known(self):
        for d in DTYPES:
            self.assertEqual(as_array([1], d).dtype.itemsize, np.dtype(d if d != "bool" else "?").itemsize)


if __name__ == "__main__":
    unittest.main()
