"""Import Claude Code history into the event store: idempotent and resumable.

Each file keeps a checkpoint (byte offset of the next unread line) in the store's
checkpoints (``get_checkpoint``), so a rerun reads only what a file gained since. A batch of
events and the checkpoints it covers are written in one transaction, so a killed
import followed by a rerun ends with exactly the store of a clean import (and
were they ever out of step, the store would skip the re-read events by id).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO
from dataclasses import dataclass, field
from pathlib import Path

from kapacitor.capture.gitinfo import resolve_context
from kapacitor.capture.masking import Job, Masker
from kapacitor.capture.transcripts import TranscriptFile, find_transcripts
from kapacitor.events import NewEvent
from kapacitor.normalize import redact
from kapacitor.normalize.claude_code import ContextResolver, Normalizer
from kapacitor.store import codec
from kapacitor.store.base import EventStore, append_skipping_taken_ids

BATCH_EVENTS = 5000
BATCH_BYTES = 16 * 1024 * 1024
_HEAD = 4096  # bytes hashed to notice a file that was replaced rather than grown


@dataclass(frozen=True)
class ImportWarning:
    """A problem in one place of one file; the import went on."""

    path: str
    line: int
    message: str
    tally: bool = False
    """A count of like records across the import, said once at its end: ``line``
    is where the first one is, so it reads as a tally, not as a line out of order."""

    def __str__(self) -> str:
        if self.tally:
            return f"{self.message}, the first at {self.path}:{self.line}"
        # Line 0 means the whole file (unreadable, not a transcript): no "file:0".
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class ImportSummary:
    """What an import did (``kapacitor import --json``; docs/reliability.md, "Import").

    ``files`` counts every file looked at; of them ``files_unchanged`` had
    nothing new since the last import, and ``files_skipped`` are not Claude Code
    transcripts (binary, or no transcript record in their first lines):
    nothing stored, warned about when first seen, then remembered by size and
    modification time until they change. ``errors`` counts files that could not
    be read (each also a warning); ``warnings`` is every notice, as
    ``path:line: message`` (bad lines kept as unknown records, repairs, skipped
    files, and per record type a tally at the end)."""

    files: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    lines: int = 0
    bytes: int = 0
    events_added: int = 0
    events_skipped: int = 0
    errors: int = 0
    warnings: list[ImportWarning] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "files_unchanged": self.files_unchanged,
            "files_skipped": self.files_skipped,
            "lines": self.lines,
            "bytes": self.bytes,
            "events_added": self.events_added,
            "events_skipped": self.events_skipped,
            "errors": self.errors,
            "warnings": [str(w) for w in self.warnings],
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int], None]
"""Called with (bytes read, events added) increments as the import goes."""


def checkpoint_name(resolved: Path) -> str:
    """The name of a file's checkpoint, from its resolved path."""
    return "import-" + hashlib.sha1(str(resolved).encode()).hexdigest()[:20]


def pending_bytes(store: EventStore, files: Iterable[TranscriptFile]) -> int:
    """How many bytes the import still has to read: for the progress bar's total."""
    total = 0
    for tf in files:
        try:
            status = tf.path.stat()
        except OSError:
            continue
        size = status.st_size
        checkpoint = store.get_checkpoint(checkpoint_name(tf.resolved))
        if _skipped_before(checkpoint, status):
            continue
        done = checkpoint.get("offset", 0)
        total += size - done if 0 <= done <= size else size
    return total


def import_paths(
    store: EventStore,
    paths: Iterable[Path],
    *,
    progress: Progress | None = None,
    on_warning: Callable[[ImportWarning], None] | None = None,
    resolve_context: ContextResolver = resolve_context,
    masker: Masker | None = None,
) -> ImportSummary:
    """Import every transcript under ``paths`` into ``store``. ``resolve_context``
    says what the machine knows of a session's cwd (repository, user): git, or,
    for the bundled demo, what the demo set records. ``masker``: where lines
    are masked (default ``Masker()``: in a worker process beside this one when
    the import is large enough to pay for it, see ``capture/masking.py``);
    closed when the import ends, however it ends."""
    summary = ImportSummary()
    started = time.perf_counter()
    batch = _Batch(store, summary, progress)
    # Asked once per cwd and run: a process-wide cache would outlive a change of
    # HOME or git config and give a later import different answers.
    resolve = functools.lru_cache(maxsize=None)(resolve_context)
    unknown_types: dict[str, tuple[ImportWarning, int]] = {}
    with masker or Masker() as masking:
        for opened in _read_ahead(find_transcripts(paths), batch, resolve, masking):
            _import_file(opened, batch, summary, on_warning, resolve, unknown_types)
    batch.flush()
    for first, count in unknown_types.values():
        warning = ImportWarning(first.path, first.line, f"{first.message} ({count} such record{'s' if count > 1 else ''})", tally=True)
        summary.warnings.append(warning)
        if on_warning:
            on_warning(warning)
    summary.seconds = time.perf_counter() - started
    return summary


class _Batch:
    """Events waiting to be appended, across files, and the checkpoints they cover."""

    def __init__(self, store: EventStore, summary: ImportSummary, progress: Progress | None):
        self.store, self.summary, self.progress = store, summary, progress
        self.events: dict[str, list[NewEvent]] = {}
        self.checkpoints: dict[str, dict[str, object]] = {}
        self.count = self.nbytes = 0

    def add(self, stream: str, event: NewEvent) -> None:
        self.events.setdefault(stream, []).append(event)
        self.count += 1

    def checkpoint(self, key: str, state: dict[str, object], nbytes: int) -> None:
        self.checkpoints[key] = state
        self.nbytes += nbytes
        if self.count >= BATCH_EVENTS or self.nbytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Append the events and save the checkpoints that cover them, atomically."""
        # A record written twice (main and sidechain transcript, or a damaged copy)
        # gives one id in two streams: the later copy is skipped, never the batch.
        added, skipped = append_skipping_taken_ids(self.store, self.events, self.checkpoints)
        self.summary.events_skipped += skipped
        self.summary.events_added += added
        if self.progress:
            self.progress(self.nbytes, added)
        self.events, self.checkpoints = {}, {}
        self.count = self.nbytes = 0


@dataclass
class _Opened:
    """A transcript file ready to import: where its unread part starts and its
    lines from there (each as read, with its body masked), or why nothing is read
    (``problem``: a warning, with ``not_transcript`` when the file is not one;
    ``unchanged``: nothing new; ``skipped_before``: not a transcript when an
    earlier import looked, unchanged since). ``stat``: size and mtime (ns)."""

    tf: TranscriptFile
    key: str
    problem: str = ""
    unchanged: bool = False
    not_transcript: bool = False
    skipped_before: bool = False
    stat: tuple[int, int] = (0, 0)
    head: bytes = b""
    offset: int = 0
    line_no: int = 0
    redactor: redact.Redactor | None = None
    lines: Iterable[tuple[bytes, bytes]] = ()


def _open(tf: TranscriptFile, batch: _Batch) -> tuple[_Opened, BinaryIO | None, int]:
    """``tf`` with its checkpoint, the open handle at the checkpoint (None when
    there is nothing to read) and how many bytes follow it."""
    opened = _Opened(tf, checkpoint_name(tf.resolved))
    try:
        handle = tf.path.open("rb")
    except OSError as exc:
        opened.problem = f"cannot read: {exc.strerror or exc}"
        return opened, None, 0
    status = os.fstat(handle.fileno())
    opened.stat = (status.st_size, status.st_mtime_ns)
    checkpoint = batch.checkpoints.get(opened.key) or batch.store.get_checkpoint(opened.key)
    if _skipped_before(checkpoint, status):
        handle.close()
        opened.skipped_before = True
        return opened, None, 0
    size = _size(handle)
    head = opened.head = handle.read(_HEAD)
    if b"\0" in head and b'{"' not in head:  # NULs and no JSON object: not text (NUL padding before records is repaired)
        handle.close()
        opened.problem, opened.not_transcript = NOT_A_TRANSCRIPT.format("binary data, not JSON lines"), True
        return opened, None, 0
    offset, line_no = checkpoint.get("offset", 0), checkpoint.get("line", 0)
    if not (0 <= offset <= size) or checkpoint.get("head") != _digest(head[: min(_HEAD, offset)]):
        offset, line_no = 0, 0  # new, shrunk or replaced: read it all again, ids dedupe
    if offset == size:
        handle.close()
        opened.unchanged = True
        return opened, None, 0
    opened.offset, opened.line_no = offset, line_no
    handle.seek(offset)
    return opened, handle, size - offset


NOT_A_TRANSCRIPT = "not a Claude Code transcript ({}): skipped, nothing stored"


def _skipped_before(checkpoint: dict[str, object], status: os.stat_result) -> bool:
    """Whether an earlier import skipped this file as not a transcript and it has
    not changed since (same size and modification time): not read again, not
    warned about again. A file that changes is looked at again, from its start."""
    return checkpoint.get("skipped") == [status.st_size, status.st_mtime_ns]


def _remember_skipped(opened: _Opened, batch: _Batch) -> None:
    """Keep, with the next batch, that ``opened`` is not a transcript as it is now."""
    batch.checkpoint(opened.key, {"path": str(opened.tf.path), "offset": 0, "line": 0, "skipped": list(opened.stat)}, 0)


def _read_ahead(files: Iterable[TranscriptFile], batch: _Batch, resolve_context: ContextResolver,
                masker: Masker) -> Iterator[_Opened]:
    """Each file opened, in order, with its rule set (``rules_for``) and its
    lines masked. The unread part of a small file is read whole, and
    consecutive small files are masked together, about ``_MASK_BLOCK`` bytes at
    a time (``Redactor.masked_lines``: their Aho-Corasick scans in a row; a
    history is thousands of files of a few kB, and a scan per file as it was
    imported found the automaton's tables evicted from the CPU cache by the
    parsing and storing of the file before). A larger file is read and masked
    a block at a time as it is imported.

    Each batch is handed to ``masker`` before the files of the batch before are
    imported: in a worker process, batch k+1 is masked while batch k is
    parsed and stored (``capture/masking.py``)."""
    group: list[tuple[_Opened, bytes]] = []
    waiting: list[_Opened] = []  # handed to the masker; imported once the next batch is
    nbytes = 0
    for tf in files:
        opened, handle, pending = _open(tf, batch)
        if handle is not None and pending > _MASK_BLOCK:
            submitted = _submit(group, masker)
            group, nbytes = [], 0
            yield from waiting
            with handle:
                start = handle.tell()
                opened.redactor = rules_for(tf, handle.read(_CWD_WITHIN), resolve_context)
                handle.seek(start)
                opened.lines = _masked_blocks(handle, opened.redactor, masker)
                yield from submitted
                yield opened
            waiting = []
            continue
        chunk = b""
        if handle is not None:
            with handle:
                chunk = handle.read()
            opened.redactor = rules_for(tf, chunk, resolve_context)
            nbytes += len(chunk)
        group.append((opened, chunk))
        if nbytes >= _MASK_BLOCK:
            submitted = _submit(group, masker)
            group, nbytes = [], 0
            yield from waiting
            waiting = submitted
    submitted = _submit(group, masker)
    yield from waiting
    yield from submitted


_CWD = re.compile(rb'"cwd"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CWD_WITHIN = 1 << 16
"""Bytes of a file's unread part searched for its session's working directory."""


def rules_for(tf: TranscriptFile, data: bytes, resolve_context: ContextResolver) -> redact.Redactor:
    """The rule set for a transcript file's session (``Redactor.for_location``):
    none where the config switches redaction off for its working directory (the
    first ``cwd`` its records name, in ``data``, else the one its project folder
    is named after) or for its GitHub repository (that directory's git remote,
    by ``resolve_context``, which also gives the repository the session is
    stored with: nothing when the directory is gone)."""
    rules = redact.default(accelerate=True)
    cwd, repository = "", None
    if rules.off or rules.off_repositories:
        match = _CWD.search(data, 0, _CWD_WITHIN)
        try:
            cwd = json.loads(b'"' + match.group(1) + b'"') if match else ""
        except ValueError:
            cwd = ""
        if cwd and rules.off_repositories:
            repository = str(resolve_context(cwd).get("repository") or "") or None
    return rules.for_location(cwd, str(tf.path), repository)


def _submit(group: list[tuple[_Opened, bytes]], masker: Masker) -> list[_Opened]:
    """The files of ``group``, their lines handed to ``masker`` in one batch per
    rule set (where redaction is off for a file, masked by none)."""
    by_rules: dict[int, tuple[redact.Redactor, list[bytes]]] = {}
    for opened, chunk in group:
        if chunk:
            by_rules.setdefault(id(opened.redactor), (opened.redactor, []))[1].append(chunk)  # type: ignore[arg-type]
    jobs = {key: masker.submit(redactor, chunks) for key, (redactor, chunks) in by_rules.items()}
    place: dict[int, int] = {}
    for opened, chunk in group:
        if chunk:
            key = id(opened.redactor)
            opened.lines = _masked_lines(chunk, jobs[key], place.setdefault(key, 0))
            place[key] += 1
    return [opened for opened, _ in group]


def _masked_lines(chunk: bytes, job: Job, index: int) -> Iterator[tuple[bytes, bytes]]:
    """The lines of ``chunk``, the ``index``-th of ``job``'s chunks, masked."""
    yield from _lines(chunk, job.result()[index])


_MASK_BLOCK = 1 << 20
"""Bytes of whole lines read and masked at a time (their scans in a row)."""


def _masked_blocks(handle: BinaryIO, redactor: redact.Redactor, masker: Masker) -> Iterator[tuple[bytes, bytes]]:
    """The lines of a large file, masked about ``_MASK_BLOCK`` bytes at a time:
    its first block handed to ``masker`` now, each next one before the lines of
    the block before are imported."""
    chunk = _block(handle)
    return _blocks_lines(handle, redactor, masker, chunk, masker.submit(redactor, [chunk]))


def _blocks_lines(handle: BinaryIO, redactor: redact.Redactor, masker: Masker, chunk: bytes, job: Job) -> Iterator[tuple[bytes, bytes]]:
    while True:
        following = _block(handle)
        handed = masker.submit(redactor, [following]) if following else None
        yield from _lines(chunk, job.result()[0])
        if handed is None:
            return
        chunk, job = following, handed


def _block(handle: BinaryIO) -> bytes:
    """About ``_MASK_BLOCK`` bytes of whole lines (b"" at the end)."""
    chunk = handle.read(_MASK_BLOCK)
    if chunk and not chunk.endswith(b"\n"):
        chunk += handle.readline()  # to the end of the line
    return chunk


def _lines(chunk: bytes, changed: dict[int, bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Each line of ``chunk`` as read, and its body (the line end removed) as
    masked: ``changed`` (by where a line starts) or else as read."""
    at = 0
    for raw in io.BytesIO(chunk).readlines():
        masked = changed.get(at)
        yield raw, raw.rstrip(b"\r\n") if masked is None else masked
        at += len(raw)


def _import_file(
    opened: _Opened,
    batch: _Batch,
    summary: ImportSummary,
    on_warning: Callable[[ImportWarning], None] | None,
    resolve_context: ContextResolver,
    unknown_types: dict[str, tuple[ImportWarning, int]],
) -> None:
    """``unknown_types`` gathers the records of a type (or block) the normalizer does
    not know, by reason, across the import: one warning per reason with its first
    place and a count, so a client's new bookkeeping record cannot flood the warnings."""
    tf, key, head = opened.tf, opened.key, opened.head

    def warn(line: int, message: str, per_type: bool = False) -> None:
        warning = ImportWarning(str(tf.path), line, message)
        if per_type:  # said once per import, at the end, with a count
            first, count = unknown_types.get(message, (warning, 0))
            unknown_types[message] = (first, count + 1)
            return
        summary.warnings.append(warning)
        if on_warning:
            on_warning(warning)

    summary.files += 1
    if opened.skipped_before:
        summary.files_skipped += 1
        return
    if opened.problem:
        warn(0, opened.problem)
        if opened.not_transcript:
            summary.files_skipped += 1
            _remember_skipped(opened, batch)
        else:
            summary.errors += 1
        return
    if opened.unchanged:
        summary.files_unchanged += 1
        return
    offset, line_no = opened.offset, opened.line_no
    normalizer = Normalizer(tf.source, resolve_context, opened.redactor)
    nbytes = 0
    # Read from the start, a file is held back until it shows a transcript record:
    # a file of something else (``import /etc/passwd``) is skipped, nothing stored.
    held: _Held | None = _Held() if offset == 0 else None

    def save() -> None:
        nonlocal nbytes
        state = {"path": str(tf.path), "offset": offset, "line": line_no, "head": _digest(head[: min(_HEAD, offset)])}
        batch.checkpoint(key, state, nbytes)
        nbytes = 0

    for raw, masked in opened.lines:
        if masked and not masked.isspace():  # masking never empties a line
            if not raw.endswith(b"\n") and not _parses(raw.rstrip(b"\r\n")):
                warn(line_no + 1, "incomplete last line (no newline, not valid JSON): left for the next import")
                break
            routed = normalizer.feed(masked, offset, line_no, masked=True)
            if held is not None:
                held.add(routed, line_no + 1)
                if normalizer.transcript_records:
                    held.release(batch, warn)
                    held = None
                elif held.lines >= _HOLD_LINES:
                    break
            else:
                _add(batch, routed, line_no + 1, warn)
        offset += len(raw)
        line_no += 1
        nbytes += len(raw)
        summary.lines += 1
        summary.bytes += len(raw)
        if nbytes >= BATCH_BYTES and held is None:
            save()
    if held is not None:
        if held.lines:
            lines = f"first {held.lines:,} lines" if held.lines >= _HOLD_LINES else "line" if held.lines == 1 else f"{held.lines:,} lines"
            warn(0, NOT_A_TRANSCRIPT.format(f"no transcript record in its {lines}"))
            summary.files_skipped += 1
            _remember_skipped(opened, batch)
        return
    save()


_HOLD_LINES = 1000


@dataclass
class _Held:
    """A new file's first events, kept back until one of its lines is a transcript
    record (the normalizer says which: ``is_transcript_record``), with the warnings
    they would give."""

    events: list[tuple[list[tuple[str, NewEvent]], int]] = field(default_factory=list)
    lines: int = 0

    def add(self, routed: list[tuple[str, NewEvent]], line: int) -> None:
        self.events.append((routed, line))
        self.lines += 1

    def release(self, batch: _Batch, warn: Callable[..., None]) -> None:
        for routed, line in self.events:
            _add(batch, routed, line, warn)


def _add(batch: _Batch, routed: list[tuple[str, NewEvent]], line: int, warn: Callable[..., None]) -> None:
    """A line's events into the batch, with a warning for what the normalizer could
    not take as it was (for a record of a type it does not know: once per type)."""
    for stream, event in routed:
        batch.add(stream, event)
        if event.type == "UnknownRecordReceived":
            warn(line, f"kept as unknown record: {event.data['reason']}", bool(event.data.get("record_type")))
        elif "raw_error" in event.metadata:
            warn(line, f"{event.metadata['raw_error']}: bad bytes replaced, original kept")
        elif "repair" in event.metadata:
            warn(line, f"damaged line: {event.metadata['repair']}")
        elif "$invalid" in event.metadata and ("raw" in event.metadata or "raw_b64" in event.metadata):
            warn(line, f"invalid values replaced ({', '.join(sorted(event.metadata['$invalid']))}), raw record kept")


def _parses(body: bytes) -> bool:
    try:
        codec.loads(body)
    except ValueError:
        return False
    return True


def _size(handle) -> int:  # type: ignore[no-untyped-def]
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    return int(size)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
