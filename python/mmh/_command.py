"""Finding the mmh command and running it through pipes.

Every call of this package is one run of the command: data goes to its standard input
and comes back from its standard output a piece at a time, so memory stays at a few
pieces whatever the size, and nothing is written to a temporary file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .errors import BadOptionError, CommandNotFoundError, MmhError, from_stderr

PIECE = 1 << 20
"""Bytes moved per read or write between Python and the command."""

_STDERR_KEEP = 64 * 1024

INSTALL_HINT = (
    "install it with `npm pack && npm install -g ./mmh-*.tgz` in a checkout of MMH "
    "(Node 22.18 or later), or set MMH_BIN to its path "
    "or to a command line such as `node /path/to/mmh/bin/mmh.js`"
)


def command() -> list[str]:
    """The command line that runs mmh: ``MMH_BIN`` (a path or a command line), else PATH."""
    configured = os.environ.get("MMH_BIN", "").strip()
    if configured:
        if os.path.exists(configured):
            return [configured]
        return shlex.split(configured)
    found = shutil.which("mmh")
    if found is None:
        raise CommandNotFoundError(f"the mmh command is not on PATH and MMH_BIN is not set: {INSTALL_HINT}")
    return [found]


def encode_options(options: dict[str, Any], allowed: Iterable[str]) -> list[str]:
    """Command-line flags for keyword options (``chunk_size="4M"`` gives ``--chunk-size=4M``)."""
    allowed = set(allowed)
    flags: list[str] = []
    for name, value in options.items():
        if name not in allowed:
            raise TypeError(f"unknown option {name!r} (known: {', '.join(sorted(allowed))})")
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            flags.append(f"{flag}={value}")
        else:
            raise BadOptionError(f"{name} must be a string or an integer, got {type(value).__name__}")
    return flags


class Run:
    """One run of the command, its stdin and stdout as pipes when asked for.

    Use as a context manager: leaving it early (an exception, or having read enough) ends
    the process; ``finish()`` waits for it and raises its error as an ``MmhError``.
    """

    def __init__(self, args: list[str], *, stdin: bool = False, stdout: bool = False) -> None:
        argv = [*command(), *args, "-q", "--no-progress"]
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        except FileNotFoundError as error:
            raise CommandNotFoundError(f"cannot run {shlex.join(argv[:2])}: {error.strerror}: {INSTALL_HINT}") from None
        except PermissionError as error:
            raise CommandNotFoundError(f"cannot run {argv[0]}: {error.strerror}: {INSTALL_HINT}") from None
        self._stderr = bytearray()
        self._stderr_thread = threading.Thread(target=self._collect_stderr, daemon=True)
        self._stderr_thread.start()
        self._feeder: threading.Thread | None = None
        self._feed_error: BaseException | None = None
        self._done = False
        self.eof = False

    def _collect_stderr(self) -> None:
        assert self.process.stderr is not None
        for piece in iter(lambda: self.process.stderr.read(PIECE), b""):
            self._stderr += piece
            if len(self._stderr) > _STDERR_KEEP:
                del self._stderr[: len(self._stderr) - _STDERR_KEEP]

    # Standard input.

    def write_all(self, pieces: Iterable[bytes | memoryview]) -> None:
        """Write every piece to stdin, then close it. A command that stopped reading has
        failed: its own error is raised by ``finish()``."""
        stdin = self.process.stdin
        assert stdin is not None
        try:
            for piece in pieces:
                view = memoryview(piece).cast("B")
                while len(view) > 0:
                    written = stdin.write(view[:PIECE])
                    view = view[written:]
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            try:
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

    def feed(self, pieces: Iterable[bytes | memoryview]) -> None:
        """``write_all`` on a thread of its own, while this one reads stdout."""

        def work() -> None:
            try:
                self.write_all(pieces)
            except BaseException as error:  # noqa: BLE001 - re-raised by finish()
                self._feed_error = error
                self.process.kill()

        self._feeder = threading.Thread(target=work, daemon=True)
        self._feeder.start()

    # Standard output.

    def pieces(self) -> Iterator[bytes]:
        """stdout, a piece at a time, to its end."""
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            piece = stdout.read(PIECE)
            if not piece:
                self.eof = True
                return
            yield piece

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` from stdout; the count is short only at the end of the output."""
        stdout = self.process.stdout
        assert stdout is not None
        view = buffer.cast("B") if buffer.format != "B" else buffer
        filled = 0
        while filled < len(view):
            count = stdout.readinto(view[filled : filled + PIECE])
            if not count:
                self.eof = True
                break
            filled += count
        return filled

    def read(self, size: int) -> bytes:
        buffer = bytearray(size)
        count = self.readinto(memoryview(buffer))
        del buffer[count:]
        return bytes(buffer)

    def skip(self, size: int) -> int:
        """Read and drop ``size`` bytes of stdout; the count is short only at its end."""
        scratch = memoryview(bytearray(min(size, PIECE) or 1))
        skipped = 0
        while skipped < size:
            count = self.readinto(scratch[: min(PIECE, size - skipped)])
            if count == 0:
                break
            skipped += count
        return skipped

    # The end.

    def finish(self) -> None:
        """Wait for the command; raise its error (or the input's) if the run failed."""
        if self._feeder is not None:
            self._feeder.join()
        if self.process.stdout is not None:
            # Whatever is left unread: the command must get to its end (and its checks).
            for _ in self.pieces():
                pass
            self.process.stdout.close()
        returncode = self.process.wait()
        self._stderr_thread.join()
        self.process.stderr.close()
        self._done = True
        if self._feed_error is not None:
            raise self._feed_error
        if returncode != 0:
            raise from_stderr(self._stderr.decode("utf-8", "replace"), returncode)

    def failure(self) -> MmhError | None:
        """The command's error if it failed: waited for once its output has ended, else only
        if it has already exited."""
        if self.eof:
            self.process.wait()
        elif self.process.poll() is None:
            return None
        self._stderr_thread.join()
        if self.process.returncode == 0:
            return None
        return from_stderr(self._stderr.decode("utf-8", "replace"), self.process.returncode)

    def close(self) -> None:
        """End the process if it is still running (an early exit) and release its pipes."""
        if self._done:
            return
        self._done = True
        if self.process.poll() is None:
            self.process.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self.process.wait()
        if self._feeder is not None:
            self._feeder.join()
        self._stderr_thread.join()
        self.process.stderr.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(args: list[str], data: bytes | bytearray | memoryview | None = None) -> bytes:
    """Run the command on ``data`` in memory; its whole output."""
    with Run(args, stdin=data is not None, stdout=True) as run_:
        if data is not None:
            run_.feed([data])
        output = b"".join(run_.pieces())
        run_.finish()
    return output


def copy_out(run_: Run, dst: IO[bytes]) -> None:
    """The command's stdout into a writable binary file object, a piece at a time."""
    for piece in run_.pieces():
        dst.write(piece)
