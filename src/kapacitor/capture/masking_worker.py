"""The importer's masking worker: a process that masks batches of transcript
lines with the importer's rule set, beside the importer (``capture/masking.py``
starts it and says why).

It speaks over one socket, each message a pickle after its length (8 bytes,
little-endian): it says ``("hello", cpu)``, is sent the rule set (a pickled
``Redactor``) and says ``("ready", cpu)`` or, if it cannot load it, ``(why,
cpu)`` and leaves; then for each batch it is sent the lengths of its chunks of
whole lines, which the importer has written one after the other from the start
of a second file the two share (a memory file): the socket carries a few
bytes, so the importer never waits for the worker to take a megabyte off it.
It answers ``("done", Redactor.masked_lines(chunks), cpu)`` or ``("error",
why, cpu)``; ``cpu`` is its seconds of CPU so far. It leaves when the socket
closes (the importer is done, or gone). Only the standard library here: the
worker's start-up is part of what a large import waits for.
"""

from __future__ import annotations

import os
import pickle
import signal
import time

_HEADER = 8


def send(fd: int, message: object) -> None:
    """Write ``message`` to ``fd``, whole. Raises ``OSError`` (the other end is gone)."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_HEADER, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int) -> object:
    """The next message on ``fd``. Raises ``EOFError`` when the other end closed it."""
    return pickle.loads(_message(fd))


def _message(fd: int) -> bytes:
    return _read(fd, int.from_bytes(_read(fd, _HEADER), "little"))


def _read(fd: int, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            raise EOFError("the other end closed the pipe")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def chunks(batches: int, lengths: list[int]) -> list[bytes]:
    """The chunks of ``lengths`` bytes one after the other in file ``batches``, from its start."""
    out, at = [], 0
    for length in lengths:
        chunk = os.pread(batches, length, at)
        if len(chunk) != length:
            raise EOFError(f"a batch of {length} bytes at {at} was not all written")
        out.append(chunk)
        at += length
    return out


def put(batches: int, chunks: list[bytes]) -> list[int]:
    """Write ``chunks`` one after the other into file ``batches`` from its start
    (for ``chunks``); their lengths."""
    at = 0
    for chunk in chunks:
        written = 0
        view = memoryview(chunk)
        while written < len(chunk):
            written += os.pwrite(batches, view[written:], at + written)
        at += len(chunk)
    return [len(chunk) for chunk in chunks]


def serve(fd: int, batches: int) -> None:
    """The worker's life, on its end ``fd`` of the socket and the file
    ``batches`` holds the batches in (see above)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    try:
        send(fd, ("hello", time.process_time()))
        message = _message(fd)
        try:
            redactor = pickle.loads(message)
        except Exception as exc:  # noqa: BLE001 — said to the importer, which masks everything itself
            send(fd, (_why(exc), time.process_time()))
            os._exit(1)
        send(fd, ("ready", time.process_time()))
        while True:
            message = _message(fd)
            try:
                answer = ("done", redactor.masked_lines(chunks(batches, pickle.loads(message))), time.process_time())
            except Exception as exc:  # noqa: BLE001 — said to the importer, which masks the batch itself
                answer = ("error", _why(exc), time.process_time())
            send(fd, answer)
    except (EOFError, OSError):  # the importer closed the socket, or is gone
        pass
    # Nothing to flush or clean up: skip the interpreter's teardown, which the
    # importer would wait for at its end.
    os._exit(0)


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
