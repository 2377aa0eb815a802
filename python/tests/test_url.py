"""mmh.open(url): a .mmh file read over HTTP range requests, from a server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import tempfile
import threading
import unittest

import mmh

from support import safetensors_bytes

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Files from ``server.files`` (name -> bytes) at ``/NAME``, with single byte ranges:
    ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` give 206 and Content-Range, an
    unsatisfiable one 416; no Range (or one this does not parse) gives the whole file."""

    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        files: dict[str, bytes] = self.server.files  # type: ignore[attr-defined]
        data = files.get(self.path.split("?", 1)[0].lstrip("/"))
        if data is None:
            self._send(404, b"not found\n" if body else b"", {"Content-Type": "text/plain"}, length=10)
            return
        size = len(data)
        etag = '"%d"' % size
        headers = {"Accept-Ranges": "bytes", "ETag": etag, "Content-Type": "application/octet-stream"}
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        if match is None or (if_range is not None and if_range != etag) or match.group(1) == match.group(2) == "":
            self._send(200, data if body else b"", headers, length=size)
            return
        first, last = match.group(1), match.group(2)
        if first == "":
            start, end = max(0, size - int(last)), size - 1
            satisfiable = int(last) > 0 and size > 0
        else:
            start = int(first)
            end = size - 1 if last == "" else min(size - 1, int(last))
            satisfiable = start < size and start <= end
        self.server.ranges.append((self.headers.get("Range"), satisfiable))  # type: ignore[attr-defined]
        if not satisfiable:
            self._send(416, b"", {"Content-Range": f"bytes */{size}"}, length=0)
            return
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(206, data[start : end + 1] if body else b"", headers, length=end - start + 1)

    def _send(self, status: int, body: bytes, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if body:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client took what it needed and went

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def tensors() -> dict:
    rng = np.random.default_rng(11)
    # Float bit patterns a float conversion would not keep: NaNs with payloads, -0.0.
    odd = np.array([0x7FC00001, 0xFFC0BEEF, 0x7F800001, 0x80000000], dtype=np.uint32).view(np.float32)
    return {
        # Random floats barely compress: the .mmh is over the 64 KiB the command reads
        # first, so tensors come through `bytes=a-b` ranges of their own.
        "embed.weight": rng.standard_normal((192, 128)).astype(np.float32),
        "layer.0.weight": np.concatenate([rng.standard_normal(2044).astype(np.float32), odd]).reshape(64, 32),
        "steps": rng.integers(-(2**62), 2**62, (5,), dtype=np.int64),
    }


def safetensors(arrays: dict, metadata: dict) -> bytes:
    dtypes = {"float32": "F32", "float16": "F16", "int64": "I64"}
    entries = [(name, dtypes[a.dtype.name], list(a.shape), a.tobytes()) for name, a in arrays.items()]
    return safetensors_bytes(entries, metadata)


@unittest.skipIf(np is None, "numpy is not installed")
class OpenUrl(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.mkdtemp(prefix="mmh-python-url-")
        cls.tensors = tensors()
        # Compressed by path, so that the .mmh has a tensor table; 4 KiB chunks, so that
        # tensors span several.
        source = os.path.join(cls.dir, "x.safetensors")
        with open(source, "wb") as f:
            f.write(safetensors(cls.tensors, {"made_by": "test_url"}))
        cls.local = os.path.join(cls.dir, "x.mmh")
        mmh.compress_file(source, cls.local, chunk_size="4K")
        with open(cls.local, "rb") as f:
            packed = f.read()
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
        cls.server.daemon_threads = True
        cls.server.files = {"x.mmh": packed, "empty.mmh": b""}
        cls.server.ranges = []
        cls.thread = threading.Thread(target=cls.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_same_keys_and_tensors_bit_for_bit(self) -> None:
        self.server.ranges.clear()
        local_tensors = mmh.numpy.load_file(self.local)
        with mmh.open(self.local) as local, mmh.open(f"{self.base}/x.mmh") as remote:
            self.assertEqual(local.info["format"], "safetensors")
            self.assertGreater(local.info["chunks"], len(self.tensors))
            self.assertEqual(remote.keys(), local.keys())
            self.assertEqual(sorted(remote.keys()), sorted(self.tensors))
            self.assertEqual({**remote.info, "file": None}, {**local.info, "file": None})
            for name in local.keys():
                with self.subTest(name=name):
                    got, want = remote.get_tensor(name), local_tensors[name]
                    self.assertEqual((got.dtype, got.shape), (want.dtype, want.shape))
                    self.assertEqual(got.tobytes(), want.tobytes())
                    self.assertEqual(got.tobytes(), self.tensors[name].tobytes())
            with self.assertRaises(mmh.NotFoundError):
                remote.get_tensor("no.such.tensor")
        # Read with range requests, from the end (the index) and from the middle (records).
        ranges = [r for r, _ in self.server.ranges]
        self.assertTrue(all(ok for _, ok in self.server.ranges), ranges)
        self.assertTrue(any(r.startswith("bytes=-") for r in ranges), ranges)
        self.assertTrue(any(re.match(r"bytes=[1-9]\d*-\d+$", r) for r in ranges), ranges)

    def test_a_file_without_a_tensor_table(self) -> None:
        # save_file streams into the command: no tensor table, so mmh.open reads the
        # safetensors header from the content, and tensors as content ranges.
        streamed = os.path.join(self.dir, "streamed.mmh")
        small = {"half": np.arange(-48, 48, dtype=np.float16) / 7, "steps": self.tensors["steps"]}
        mmh.numpy.save_file(small, streamed, metadata={"k": "v"})
        with open(streamed, "rb") as f:
            self.server.files["streamed.mmh"] = f.read()
        with mmh.open(f"{self.base}/streamed.mmh") as remote:
            self.assertEqual(remote.keys(), list(small))
            self.assertEqual(remote.metadata(), {"k": "v"})
            self.assertEqual(remote.get_tensor("half").tobytes(), small["half"].tobytes())

    def test_a_missing_url_is_not_found(self) -> None:
        with self.assertRaises(mmh.NotFoundError) as caught:
            mmh.open(f"{self.base}/missing.mmh")
        self.assertEqual(caught.exception.code, "E_NOT_FOUND")
        self.assertIsInstance(caught.exception, LookupError)
        self.assertIn("missing.mmh", str(caught.exception))

    def test_an_empty_file_is_an_error(self) -> None:
        # Every range of an empty file is unsatisfiable: 416, which the command reports so.
        self.server.ranges.clear()
        with self.assertRaises(mmh.TruncatedError) as caught:
            mmh.open(f"{self.base}/empty.mmh")
        self.assertEqual(caught.exception.code, "E_TRUNCATED")
        self.assertIn("416", str(caught.exception))
        self.assertTrue(self.server.ranges)
        self.assertFalse(any(ok for _, ok in self.server.ranges), self.server.ranges)


if __name__ == "__main__":
    unittest.main()
