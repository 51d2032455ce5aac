"""The client's shared-memory writer (shm_arena.py) against the worker's reader (shm.py), in one process: the
on-disk format (modes, lease, slot header), bytes through a descriptor and back through the reply area, reuse under
a new generation, every bad input, and the janitor's rules for a folder whose owner is gone. The end-to-end tests
with a real gateway and workers are in test/shm/python-client.test.ts."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import msgpack
import numpy as np

from physical_ai_worker.codec import EncodeError, decode_message, encode_message
from physical_ai_worker.protocol import WorkerError
from physical_ai_worker.shm import GENERATION_OFFSET, SLOT_MAGIC, SharedMemory, sweep
from physical_ai_worker.shm_arena import ShmArena


def _root():
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="paig-arena-test-", dir=base)


def _decode_as_worker(shm, placement):
    """What a worker does with the request: decode its descriptors into views on the mapped slots."""
    frames = [bytes(f) for f in encode_message({"type": "x", "data": placement.data, "shm": placement.shm})]
    return decode_message(frames, shm=shm)


class ArenaTest(unittest.TestCase):
    def setUp(self):
        self.root = _root()
        self.addCleanup(shutil.rmtree, self.root, True)
        self.worker = SharedMemory(self.root)
        self.addCleanup(self.worker.close)

    def arena(self, **kwargs):
        arena = ShmArena(self.root, **kwargs)
        self.addCleanup(arena.close)
        return arena

    def test_layout_modes_and_lease(self):
        arena = self.arena(lease_ms=2000)
        self.assertEqual(arena.open(), self.worker.realm, "the worker and the client read the same realm")
        placement = arena.place({"image": np.ones((64, 64, 3), np.uint8)})
        self.assertEqual(stat.S_IMODE(os.stat(arena.folder).st_mode), 0o700)
        lease_path = os.path.join(arena.folder, "lease.json")
        self.assertEqual(stat.S_IMODE(os.stat(lease_path).st_mode), 0o600)
        with open(lease_path) as f:
            lease = json.load(f)
        self.assertEqual(sorted(lease), ["boot", "key", "lease_ms", "pid", "pidns", "start"])
        self.assertEqual((lease["pid"], lease["lease_ms"], lease["key"]), (os.getpid(), 2000, placement.shm["key"]))
        self.assertTrue(lease["start"].isdigit())
        slot = os.path.join(self.root, placement.segment)
        self.assertEqual(stat.S_IMODE(os.stat(slot).st_mode), 0o600)
        with open(slot, "rb") as f:
            header = np.frombuffer(f.read(16), dtype="<u4")
        self.assertEqual(int(header[0]), SLOT_MAGIC)
        self.assertEqual(int(header[1]), 1)
        self.assertEqual(int(header[2:4].view("<u8")[0]), 1, "generation 1 on first use")
        self.assertEqual(os.stat(slot).st_size, 64 * 1024 * 2)
        placement.release()
        arena.close()
        self.assertFalse(os.path.exists(arena.folder))

    def test_bytes_through_descriptors_and_back_through_the_reply_area(self):
        arena = self.arena(reply_bytes=1 << 20)
        arena.open()
        rng = np.random.default_rng(7)
        image = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        data = {
            "images": {"cam": image, "flipped": image[:, ::-1]},  # a strided view: written C-ordered
            "depth": rng.random((32, 48)).astype(">f4"),  # big-endian: written little-endian
            "state": np.arange(14, dtype=np.float32),  # small: stays a frame
            "list": [image[:8]],
        }
        placement = arena.place(data)
        self.assertEqual(placement.tensors, 4)
        self.assertIs(placement.data["state"], data["state"])
        self.assertIs(data["images"]["cam"], image, "the input is untouched")
        decoded = _decode_as_worker(self.worker, placement)
        seen = decoded.header["data"]
        np.testing.assert_array_equal(seen["images"]["cam"], image)
        np.testing.assert_array_equal(seen["images"]["flipped"], image[:, ::-1])
        np.testing.assert_array_equal(seen["depth"], data["depth"])
        self.assertEqual(seen["depth"].dtype, np.dtype("<f4"))
        np.testing.assert_array_equal(seen["list"][0], image[:8])
        self.assertFalse(seen["images"]["cam"].flags.writeable)
        # The worker answers through the reply area; the client reads it with its placement (a copy of its own).
        result = decoded.shm.place_result({"echo": np.array(seen["images"]["cam"]), "small": np.zeros(3, np.float32)})
        self.assertIn("shm", result["echo"])
        reply = decode_message([bytes(f) for f in encode_message({"status": "success", "result": result})], reply=placement)
        echo = reply.header["result"]["echo"]
        np.testing.assert_array_equal(echo, image)
        self.assertTrue(echo.flags.writeable and echo.flags.owndata, "copied out of the slot")
        placement.release()
        self.assertEqual(arena.stats()["free"], 1)

    def test_reuse_bumps_the_generation_and_stale_descriptors_are_refused(self):
        arena = self.arena()
        arena.open()
        first = arena.place({"image": np.ones((64, 64, 3), np.uint8)})
        first.release()
        first.release()  # idempotent
        second = arena.place({"image": np.full((64, 64, 3), 2, np.uint8)})
        self.assertEqual(second.segment, first.segment, "the same slot")
        self.assertEqual(second.shm["reply"]["generation"], 2)
        with self.assertRaises(WorkerError) as ctx:
            _decode_as_worker(self.worker, first)
        self.assertEqual((ctx.exception.code, ctx.exception.path), ("bad_request", "/data/image/shm/generation"))
        self.assertEqual(int(_decode_as_worker(self.worker, second).header["data"]["image"][0, 0, 0]), 2)
        # A reply into a released placement's area is not read.
        with self.assertRaises(WorkerError) as ctx:
            first.view({"dtype": "uint8", "shape": [4], "shm": {"segment": first.segment, "offset": 1 << 16, "generation": 1}}, "/result/x")
        self.assertEqual(ctx.exception.code, "worker_error")
        second.release()

    def test_bad_inputs(self):
        arena = self.arena(max_bytes=256 * 1024)
        self.assertIsNone(arena.place({"image": np.ones((64, 64, 3), np.uint8)}), "not open: frames")
        arena.open()
        self.assertIsNone(arena.place({"state": np.zeros(14, np.float32)}), "nothing large: frames")
        with self.assertRaises(EncodeError) as ctx:
            arena.place({"images": {"cam": np.zeros((64, 64), np.complex64)}})
        self.assertIn("/data/images/cam: dtype complex64", str(ctx.exception))
        with self.assertRaises(EncodeError):
            arena.place({"deep": np.zeros((2,) * 12, np.float32)})
        with self.assertRaises(WorkerError) as ctx:
            arena.place({"image": np.zeros((480, 640, 3), np.uint8)})
        self.assertEqual(ctx.exception.code, "too_large")
        self.assertEqual(arena.stats()["slots"], 0, "nothing made for a refused request")
        held = arena.place({"image": np.zeros((150, 150, 3), np.uint8)})
        self.assertIsNone(arena.place({"image": np.zeros((150, 150, 3), np.uint8)}), "the budget is held: frames")
        held.release()
        for kwargs in ({"min_bytes": -1}, {"max_bytes": 0}, {"lease_ms": 50}, {"reply_min_bytes": -2}):
            with self.assertRaises(ValueError):
                ShmArena(self.root, **kwargs)
        arena.close()
        with self.assertRaises(WorkerError):
            arena.open()

    def test_a_wrong_key_is_refused(self):
        arena = self.arena()
        arena.open()
        placement = arena.place({"image": np.ones((64, 64, 3), np.uint8)})
        frames = [bytes(f) for f in encode_message({"type": "x", "data": placement.data, "shm": dict(placement.shm, key="0" * 48)})]
        with self.assertRaises(WorkerError) as ctx:
            decode_message(frames, shm=self.worker)
        self.assertEqual(ctx.exception.code, "unauthorized")
        placement.release()

    def test_a_dead_owner_is_swept_and_a_live_one_kept(self):
        code = (
            "import sys, numpy as np; from physical_ai_worker.shm_arena import ShmArena; "
            "a = ShmArena(sys.argv[1], lease_ms=60000); a.open(); a.place({'i': np.zeros((64, 64, 3), np.uint8)}); print(a.folder)"
        )
        # The child exits without close(): as after SIGKILL, its folder stays until a janitor sees its pid is gone.
        out = subprocess.run([sys.executable, "-c", code + "; import os; os._exit(0)", self.root], check=True, stdout=subprocess.PIPE)
        folder = out.stdout.decode().strip()
        self.assertTrue(os.path.isdir(folder))
        live = self.arena()
        live.open()
        self.assertFalse(os.path.exists(folder), "opening an arena swept the dead owner's folder")
        self.assertEqual(live.swept, [os.path.basename(folder)])
        self.assertEqual(sweep(self.root), [], "the live arena is kept")
        self.assertTrue(os.path.isdir(live.folder))
        with open(os.path.join(live.folder, "lease.json")) as f:
            self.assertEqual(json.load(f)["key"], live._key)
        msgpack.packb(live.place({"i": np.zeros(8192, np.uint8)}).data["i"])  # descriptors are plain values
        self.assertEqual(GENERATION_OFFSET, 8)


    def test_a_forked_child_leaves_the_parents_folder_and_slots_alone(self):
        # multiprocessing's fork start method: the child inherits the arena object (no renewal thread). Its close()
        # (a `with` block, ZMQClient.close) must not remove the parent's live folder, and its place() must not write
        # into slots the parent owns (its free list is a copy: both could take the same slot).
        arena = self.arena()
        arena.open()
        arena.place({"image": np.ones((64, 64, 3), np.uint8)}).release()
        held = arena.place({"image": np.full((64, 64, 3), 7, np.uint8)})
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, never return into the test runner
            code = 1
            try:
                os.close(read)
                placed = arena.place({"image": np.full((64, 64, 3), 9, np.uint8)})
                arena.close()
                os.write(write, b"none" if placed is None else b"placed")
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            said = f.read()
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.WEXITSTATUS(status), 0)
        self.assertEqual(said, b"none", "the child sends frames: the parent's slots are not its to reuse")
        self.assertTrue(os.path.isdir(arena.folder), "the parent's folder survives the child's close()")
        self.assertEqual(int(_decode_as_worker(self.worker, held).header["data"]["image"][0, 0, 0]), 7)
        held.release()

    def test_an_arena_not_closed_is_closed_at_interpreter_exit(self):
        code = (
            "import sys, numpy as np; from physical_ai_worker.shm_arena import ShmArena; "
            "a = ShmArena(sys.argv[1]); a.open(); a.place({'i': np.zeros((64, 64, 3), np.uint8)}); print(a.folder)"
        )
        out = subprocess.run([sys.executable, "-c", code, self.root], check=True, stdout=subprocess.PIPE)
        folder = out.stdout.decode().strip()
        self.assertTrue(folder.startswith(self.root))
        self.assertFalse(os.path.exists(folder), "a script that ends without close() leaves no slot files in memory")

    def test_a_folder_removed_under_a_live_arena_means_frames_not_an_oserror(self):
        arena = self.arena()
        arena.open()
        arena.place({"image": np.ones((64, 64, 3), np.uint8)}).release()
        shutil.rmtree(arena.folder)  # a janitor that thought us gone (e.g. lease not renewed during a long stall)
        self.assertIsNone(arena.place({"image": np.ones((480, 640, 3), np.uint8)}), "a new slot cannot be made: frames")
        arena.close()

    def test_a_full_shared_memory_filesystem_means_frames_not_a_bus_error(self):
        # Docker gives a container 64 MiB of /dev/shm by default, less than max_bytes: a slot file made sparse by
        # ftruncate and written through the map killed the process with SIGBUS once the tmpfs was full. A small tmpfs
        # of our own, in a mount namespace of our own.
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("needs unshare -m (a private mount namespace) to mount a small tmpfs")
        code = (
            "import sys, numpy as np; from physical_ai_worker.shm_arena import ShmArena; "
            "a = ShmArena(sys.argv[1]); a.open(); "
            "held = a.place({'i': np.ones(300 * 1024, np.uint8)}); "
            "full = a.place({'i': np.ones(400 * 1024, np.uint8)}); "
            "print(held is not None, full is None, a.stats()['slots'], sorted(n for n in __import__('os').listdir(a.folder) if n.endswith('.slot'))); "
            "held.release(); a.close()"
        )
        sdk = os.path.dirname(os.path.dirname(os.path.abspath(__import__("physical_ai_worker").__file__)))
        script = 'mount -t tmpfs -o size=640k tmpfs "$1" && exec env PYTHONPATH="$2" "$3" -c "$4" "$1/root"'
        out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", self.root, sdk, sys.executable, code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(out.returncode, 0, "exit status %d (-7/135: SIGBUS); %s" % (out.returncode, out.stderr.decode()[-500:]))
        self.assertEqual(out.stdout.decode().strip(), "True True 1 ['0.slot']", "the second request goes as frames; no half-made slot file stays")

    def test_a_reply_descriptor_with_an_impossible_shape_is_a_worker_error(self):
        # numpy's int64 product wrapped (2**62 * 4 == 0 bytes: "fits") or overflowed: ValueError/OverflowError
        # escaped from decode_message instead of the documented WorkerError.
        arena = self.arena()
        arena.open()
        placement = arena.place({"image": np.ones((64, 64, 3), np.uint8)})
        reply = placement.shm["reply"]
        for shape in ([2 ** 62, 4], [2 ** 64], [0, 2 ** 63]):
            ref = {"dtype": "uint8", "shape": shape, "shm": {"segment": placement.segment, "offset": reply["offset"], "generation": reply["generation"]}}
            with self.assertRaises(WorkerError, msg=str(shape)) as ctx:
                placement.view(ref, "/result/x")
            self.assertEqual(ctx.exception.code, "worker_error")
        placement.release()

    def test_a_worker_replying_into_a_sparse_slot_on_a_full_filesystem_sends_frames(self):
        # The TypeScript client makes its slot files with ftruncate only (sparse). On a full /dev/shm the worker's
        # copy of a result into the reply area, through its map, killed the worker with SIGBUS.
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("needs unshare -m (a private mount namespace) to mount a small tmpfs")
        code = """
import os, sys, numpy as np
from physical_ai_worker.codec import decode_message, encode_message
from physical_ai_worker.shm import SharedMemory
from physical_ai_worker.shm_arena import ShmArena
root = sys.argv[1]
arena = ShmArena(root, reply_bytes=256 * 1024); arena.open(); worker = SharedMemory(root)
placement = arena.place({"i": np.ones(8192, np.uint8)})
slot = os.path.join(root, placement.segment)
reply = placement.shm["reply"]
os.truncate(slot, reply["offset"]); os.truncate(slot, reply["offset"] + reply["bytes"])  # the reply area sparse, as TS makes it
fd = os.open(os.path.join(root, "filler"), os.O_WRONLY | os.O_CREAT)  # the tmpfs full
try:
    while True:
        os.write(fd, b"x" * 4096)
except OSError:
    os.close(fd)
request = decode_message([bytes(f) for f in encode_message({"type": "x", "data": placement.data, "shm": placement.shm})], shm=worker)
out = request.shm.place_result({"big": np.full(128 * 1024, 3, np.uint8)})
print(type(out["big"]).__name__)
"""
        sdk = os.path.dirname(os.path.dirname(os.path.abspath(__import__("physical_ai_worker").__file__)))
        script = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec env PYTHONPATH="$2" "$3" -c "$4" "$1/root"'
        out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", self.root, sdk, sys.executable, code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(out.returncode, 0, "exit status %d (-7: SIGBUS); %s" % (out.returncode, out.stderr.decode()[-500:]))
        self.assertEqual(out.stdout.decode().strip(), "ndarray", "the result stays in the reply as a frame")

if __name__ == "__main__":
    unittest.main()
