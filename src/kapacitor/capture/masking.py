"""Where the importer's lines are masked: in a worker process beside it, when
that pays.

Masking a history's lines (``Redactor.masked_lines``) is a fifth to a quarter
of an import's CPU on the current client's history; parsing, normalizing and
storing are the rest, and they stay in the importer's process. A ``Masker``
hands each batch of lines to one worker process (``capture/masking_worker.py``)
and the importer asks for a batch's masked lines only once it has handed over
the next one, so on a machine with a core to spare the worker masks batch
k+1 while the importer stores batch k: redaction then adds to an import's wall
time little more than handing the bytes over (a shared memory file; the
socket between them carries the batches' lengths and the masked lines). It
does not save CPU: the same masking is done, on another core, plus the
worker's start-up (``docs/benchmarks.md``, issue 11).

- **One worker**, not a pool: masking is the smaller part, so one worker keeps
  ahead of the importer (more would wait, each holding its own automaton).
- **Only beside a free core** (``spare_core``): none where this process may
  use a single core (``os.sched_getaffinity``), nor where the machine's other
  work (the 1-minute load average) leaves less than one core free (the
  worker needs about a fifth of one). Without a free core the worker takes CPU
  from the importer instead of running beside it, and each hand-over waits
  for the scheduler: on this project's 2-core machine at load 6–11, imports
  with a worker took 0.92–1.23× the wall time of imports masking inline
  (per-run medians; 1.16–1.23× in three runs of five); at load 0.85 (back-to-back
  imports, the only work) a worker gave 1.05× the wall time without redaction
  against 1.22× inline (paired medians of 10). ``KAPACITOR_MASKING``
  (``auto``, ``worker``, ``inline``) overrides the choice.
- **A fresh interpreter** (``python -c``, the worker module alone), neither
  forked nor started by ``multiprocessing``: ``import_paths`` runs in
  ``kapacitor import`` and in ``kapacitor serve --import``/``--demo`` before
  the server starts (never in the server's threads or the follower), but
  tests call it with threads running, and forking a process that has
  threads can copy a held lock; ``multiprocessing``'s
  spawn and forkserver run the importing program's main module again in the
  worker (a script without a ``__main__`` guard would import twice). The
  worker gets the rule set pickled (``Redactor.__reduce__``: specs, keyword
  index, allowlists, key, switches; its rules and automata made again there),
  so it masks byte for byte as this process would; a batch of another rule
  set is masked here.
- **Started when it pays**: the worker takes ~0.06 s of CPU to be ready
  (interpreter, imports, automata) and 0.1 s of wall time on a free core
  (0.3–0.6 s on this project's loaded 2-core machine), this process ~3 ms;
  until it is ready, batches are masked here. The importer meanwhile stores
  ~2 MB, so a smaller import gains nothing from a worker: one known to read
  less than ``WORKER_FROM`` bytes (``expected_bytes``, the progress bar's
  total) masks inline, and one of unknown size starts a worker once it has
  masked that much.
- **Bounded**: one batch in the worker at a time (``submit`` takes the masked
  lines of the batch before first), so at most the batch being stored and the
  one being masked are held.
- **Nothing lost, nothing left**: a worker that raises leaves that batch to be
  masked here, with one log line; one that dies (or cannot start) leaves every
  batch from then on to this process, with one log line. ``close`` (at the
  import's end, on an error or Ctrl-C) closes the socket, which ends the
  worker, and waits for it; an importer killed outright closes it too. The
  worker runs in a process group of its own and ignores SIGINT: Ctrl-C in the
  terminal is the importer's to handle.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Literal

import kapacitor
from kapacitor.capture.masking_worker import put, receive, send
from kapacitor.normalize.redact import Redactor

log = logging.getLogger(__name__)

Mode = Literal["auto", "worker", "inline"]
"""``auto``: a worker when it pays (``WORKER_FROM`` bytes or more, a spare
core); ``worker``: a worker whatever the size and the load; ``inline``: never
a worker."""

WORKER_FROM = 4 << 20
"""Bytes to mask from which an ``auto`` import uses a worker: from its first
batch when it is known to read this much (``expected_bytes``), else once it
has masked this much inline (measured break-even: ``docs/benchmarks.md``,
issue 11)."""

Changes = list[dict[int, bytes]]
"""What ``Redactor.masked_lines`` gives: per chunk, the masked lines that changed."""

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(kapacitor.__file__)))
"""Where this ``kapacitor`` is imported from: the worker imports the same code."""


def _memory_file() -> int:
    """A file descriptor of a file in memory, to hand batches over in (Linux:
    ``memfd_create``; elsewhere an unnamed temporary file, in the page cache)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("kapacitor-masking", os.MFD_CLOEXEC)
    handle = tempfile.TemporaryFile()
    fd = os.dup(handle.fileno())
    handle.close()
    return fd


_MODES: dict[str, Mode] = {"auto": "auto", "worker": "worker", "inline": "inline"}


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS: no affinity
        return os.cpu_count() or 1


def spare_core(count: int | None = None, load: float | None = None) -> bool:
    """Whether a worker would have a core to itself beside the importer:
    ``count`` cores (default ``cores()``), two or more, and the machine's other
    work (``load``, default the 1-minute load average: runnable processes)
    leaving one of them or more free."""
    count = cores() if count is None else count
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): the cores alone
            load = 0.0
    return count >= 2 and count - load >= 1.0


class Job:
    """A batch's masking: ``result()`` waits for it (or, if the worker failed,
    masks it here) and keeps it."""

    __slots__ = ("_masker", "redactor", "chunks", "_changes")

    def __init__(self, masker: Masker, redactor: Redactor, chunks: Sequence[bytes], changes: Changes | None = None):
        self._masker, self.redactor, self.chunks, self._changes = masker, redactor, chunks, changes

    def result(self) -> Changes:
        if self._changes is None:
            self._changes = self._masker._collect(self)
        return self._changes


class Masker:
    """Masks the importer's batches (``submit``), in a worker process when that
    pays (see the module's docstring); ``close`` when done. Figures for the
    bench: ``worker_bytes`` and ``inline_bytes`` masked each way,
    ``worker_cpu`` (seconds of CPU the worker process used, start-up
    included), ``ready_after`` (seconds from its start until it could mask),
    ``waited`` (seconds this process waited for the worker's answers)."""

    def __init__(self, mode: Mode | None = None, expected_bytes: int | None = None, *, wait: bool = False):
        """``mode``: default ``$KAPACITOR_MASKING``, else ``auto``;
        ``expected_bytes``: how much the import will read, when known;
        ``wait``: every batch to the worker, waiting for it to be ready rather
        than masking here meanwhile (to compare its output byte for byte)."""
        mode = mode or _MODES.get(os.environ.get("KAPACITOR_MASKING", ""), "auto")
        small = expected_bytes is not None and expected_bytes < WORKER_FROM
        self.mode: Mode = "inline" if mode == "auto" and (small or not spare_core()) else mode
        self.expected_bytes, self.wait = expected_bytes, wait
        self.worker_bytes = self.inline_bytes = 0
        self.worker_cpu = self.waited = 0.0
        self.ready_after: float | None = None
        self._redactor: Redactor | None = None  # the rule set the worker is given
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._batches: int | None = None  # the file batches are handed over in
        self._state = "none"  # none → starting → (waiting →) loading → ready; broken (never again); closed
        self._started = 0.0
        self._in_flight: Job | None = None
        if self.mode == "worker" or (self.mode == "auto" and expected_bytes is not None):
            self._start()  # it starts while the import lists and reads its first files

    @property
    def pid(self) -> int | None:
        """The worker's process id (None: none started)."""
        return self._process.pid if self._process is not None else None

    def submit(self, redactor: Redactor, chunks: Sequence[bytes]) -> Job:
        """``redactor.masked_lines(chunks)``, to be taken with ``result()``: in
        the worker if it is ready for this rule set (once the batch before is
        taken from it), else here and now."""
        nbytes = sum(map(len, chunks))
        if not redactor.enabled or not nbytes:
            return Job(self, redactor, chunks, redactor.masked_lines(list(chunks)))
        if self._in_flight is not None:
            self._in_flight.result()  # one batch in the worker at a time
        if self._worker_for(redactor, nbytes):
            try:
                send(self._socket.fileno(), put(self._batches, chunks))  # type: ignore[union-attr, arg-type]
            except OSError:
                self._lost("stopped")
            else:
                self.worker_bytes += nbytes
                self._in_flight = Job(self, redactor, chunks)
                return self._in_flight
        self.inline_bytes += nbytes
        return Job(self, redactor, chunks, redactor.masked_lines(list(chunks)))

    def _worker_for(self, redactor: Redactor, nbytes: int) -> bool:
        """Whether the worker masks this batch: starting it first if it is time."""
        if self._state == "none" and self.mode == "auto" and self.inline_bytes + nbytes >= WORKER_FROM:
            self._start()
        if self._redactor is None and self._state in ("starting", "waiting"):
            self._redactor = redactor  # the rule set it gets: the first one it is asked to mask with
            if self._state == "waiting":
                self._load()
        while self._state in ("starting", "loading") and (self.wait or self._readable()):
            self._advance()
        return self._state == "ready" and redactor is self._redactor

    def _readable(self) -> bool:
        """Whether the worker has said something (poll, not select: a process
        with over 1,024 files open gives the socket a number select refuses)."""
        poller = select.poll()
        poller.register(self._socket, select.POLLIN)
        return bool(poller.poll(0))

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (_PACKAGE_ROOT, os.environ.get("PYTHONPATH"))))}
        self._started = time.perf_counter()
        batches = None
        try:
            batches = _memory_file()
            command = [sys.executable, "-c",
                       f"from kapacitor.capture.masking_worker import serve; serve({theirs.fileno()}, {batches})"]
            if not sys.executable:
                raise OSError("no Python executable known")
            process = subprocess.Popen(command, pass_fds=[theirs.fileno(), batches], env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
        except (OSError, ValueError) as exc:  # ValueError: no pass_fds (Windows)
            ours.close()
            if batches is not None:
                os.close(batches)
            self._state = "broken"
            log.warning("masking worker: cannot start (%s): masking in the importer's process", exc)
            return
        finally:
            theirs.close()  # the worker's end: its exit closes the socket for us
        self._process, self._socket, self._batches, self._state = process, ours, batches, "starting"

    def _advance(self) -> None:
        """The worker's next word while it starts: ``hello`` once it runs (it is
        then sent the rule set, once known: ~70 kB, more than a socket buffer
        holds, so not before it reads), ``ready`` once it has loaded it."""
        try:
            kind, cpu = receive(self._socket.fileno())  # type: ignore[union-attr, misc]
        except (EOFError, OSError):
            self._lost("stopped while starting")
            return
        self.worker_cpu = cpu
        if kind == "hello":
            self._state = "waiting"
            if self._redactor is not None:
                self._load()
        elif kind == "ready":
            self._state, self.ready_after = "ready", time.perf_counter() - self._started
        else:
            self._lost(f"cannot load the rule set ({kind})")

    def _load(self) -> None:
        try:
            send(self._socket.fileno(), self._redactor)  # type: ignore[union-attr]
        except OSError:
            self._lost("stopped while starting")
            return
        self._state = "loading"

    def _collect(self, job: Job) -> Changes:
        """The worker's answer for ``job`` (the one in flight), or its masking
        here when the worker failed."""
        self._in_flight = None
        if self._state == "ready":
            waiting = time.perf_counter()
            try:
                kind, value, cpu = receive(self._socket.fileno())  # type: ignore[union-attr, misc]
                self.waited += time.perf_counter() - waiting
            except (EOFError, OSError):
                self._lost("stopped")
            else:
                self.worker_cpu = cpu
                if kind == "done":
                    return value  # type: ignore[no-any-return]
                log.warning("masking worker: %s: masking this batch in the importer's process", value)
        nbytes = sum(map(len, job.chunks))
        self.worker_bytes -= nbytes
        self.inline_bytes += nbytes
        return job.redactor.masked_lines(list(job.chunks))

    def _lost(self, why: str) -> None:
        """The worker is gone for this import: said once, then masking here."""
        self._state = "broken"
        code = self._stop()
        exited = f" (exit code {code})" if code else ""
        log.warning("masking worker %s%s: masking in the importer's process from here on", why, exited)

    def close(self) -> None:
        """Stop the worker (if any) and wait for it; the figures stay."""
        if self._state != "closed":
            self._state = "closed"
            self._stop()

    def _stop(self) -> int | None:
        """Close the socket, wait for the worker: its exit code."""
        process, sock, batches = self._process, self._socket, self._batches
        self._socket = self._batches = None
        if sock is not None:
            sock.close()  # the worker's next read or write fails: it leaves
        if batches is not None:
            os.close(batches)
        if process is not None:
            try:
                process.wait(2)  # a batch in flight is finished first
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return process.returncode
        return None

    def __enter__(self) -> Masker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
