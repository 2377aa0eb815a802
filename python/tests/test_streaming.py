"""A 1 GiB file streams through compress_file and decompress_file in bounded memory.

It runs in a Python process of its own, so its peak RSS (ru_maxrss) is the streaming's
alone. compress_file reads and writes Python file objects and decompress_file writes one,
so every byte passes through this package's pipes (given paths, the command would read
and write the files itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

from support import TempDirTest

LIMIT_MB = 100

CHILD = r"""
import hashlib, json, os, resource, sys, time
import mmh

src, dst, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
piece = bytearray(os.urandom(1 << 20))
written = hashlib.sha256()
with open(src, "wb") as f:
    for i in range(size >> 20):
        piece[:8] = i.to_bytes(8, "little")  # every MiB differs: nothing repeats
        f.write(piece)
        written.update(piece)
started = time.monotonic()
with open(src, "rb") as source, open(dst, "wb") as target:
    mmh.compress_file(source, target, codec="zstd", level=1)
os.remove(src)

class Hashing:
    def __init__(self):
        self.hash, self.size = hashlib.sha256(), 0
    def write(self, data):
        self.hash.update(data)
        self.size += len(data)

sink = Hashing()
mmh.decompress_file(dst, sink)
print(json.dumps({
    "same": sink.hash.hexdigest() == written.hexdigest() and sink.size == size,
    "seconds": time.monotonic() - started,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


class Streaming(TempDirTest):
    def stream(self, size: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        # Through sh: Linux carries a process's peak RSS over into the child it starts
        # (this test process's, torch and all), but not into a grandchild forked by sh.
        result = subprocess.run(
            ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", CHILD, self.path("big.bin"), self.path("big.mmh"), str(size)],
            capture_output=True,
            env=env,
            timeout=900,
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        report = json.loads(result.stdout)
        print(f"\n  {size >> 20} MiB: {report['seconds']:.1f} s, peak RSS {report['peak_mb']:.1f} MB", file=sys.stderr)
        self.assertTrue(report["same"], "decompressed content differs")
        self.assertLess(report["peak_mb"], LIMIT_MB)

    def test_1_gib(self) -> None:
        self.stream(1 << 30)


if __name__ == "__main__":
    unittest.main()
