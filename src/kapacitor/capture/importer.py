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
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO
from dataclasses import dataclass, field
from pathlib import Path

from kapacitor.capture.gitinfo import resolve_context
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

    def __str__(self) -> str:
        # Line 0 means the whole file (unreadable, not a transcript): no "file:0".
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class ImportSummary:
    files: int = 0
    files_unchanged: int = 0
    lines: int = 0
    bytes: int = 0
    events_added: int = 0
    events_skipped: int = 0
    warnings: list[ImportWarning] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return len(self.warnings)

    def as_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "files_unchanged": self.files_unchanged,
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
            size = tf.path.stat().st_size
        except OSError:
            continue
        done = store.get_checkpoint(checkpoint_name(tf.resolved)).get("offset", 0)
        total += size - done if 0 <= done <= size else size
    return total


def import_paths(
    store: EventStore,
    paths: Iterable[Path],
    *,
    progress: Progress | None = None,
    on_warning: Callable[[ImportWarning], None] | None = None,
    resolve_context: ContextResolver = resolve_context,
) -> ImportSummary:
    """Import every transcript under ``paths`` into ``store``. ``resolve_context``
    says what the machine knows of a session's cwd (repository, user): git, or,
    for the bundled demo, what the demo set records."""
    summary = ImportSummary()
    started = time.perf_counter()
    batch = _Batch(store, summary, progress)
    # Asked once per cwd and run: a process-wide cache would outlive a change of
    # HOME or git config and give a later import different answers.
    resolve = functools.lru_cache(maxsize=None)(resolve_context)
    unknown_types: dict[str, tuple[ImportWarning, int]] = {}
    for tf in find_transcripts(paths):
        _import_file(tf, batch, summary, on_warning, resolve, unknown_types)
    batch.flush()
    for first, count in unknown_types.values():
        warning = ImportWarning(first.path, first.line, f"{first.message} ({count} such record{'s' if count > 1 else ''})")
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


def _import_file(
    tf: TranscriptFile,
    batch: _Batch,
    summary: ImportSummary,
    on_warning: Callable[[ImportWarning], None] | None,
    resolve_context: ContextResolver,
    unknown_types: dict[str, tuple[ImportWarning, int]],
) -> None:
    """``unknown_types`` gathers the records of a type (or block) the normalizer does
    not know, by reason, across the import: one warning per reason with its first
    place and a count, so a client's new bookkeeping record cannot flood the warnings."""

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
    key = checkpoint_name(tf.resolved)
    try:
        handle = tf.path.open("rb")
    except OSError as exc:
        warn(0, f"cannot read: {exc.strerror or exc}")
        return
    with handle:
        size = _size(handle)
        head = handle.read(_HEAD)
        if b"\0" in head and b'{"' not in head:  # NULs and no JSON object: not text (NUL padding before records is repaired)
            warn(0, "not a Claude Code transcript (binary data, not JSON lines): skipped, nothing stored")
            return
        checkpoint = batch.checkpoints.get(key) or batch.store.get_checkpoint(key)
        offset, line_no = checkpoint.get("offset", 0), checkpoint.get("line", 0)
        if not (0 <= offset <= size) or checkpoint.get("head") != _digest(head[: min(_HEAD, offset)]):
            offset, line_no = 0, 0  # new, shrunk or replaced: read it all again, ids dedupe
        if offset == size:
            summary.files_unchanged += 1
            return
        handle.seek(offset)
        redactor = redact.default(accelerate=True).for_location(transcript=str(tf.path))
        normalizer = Normalizer(tf.source, resolve_context, redactor)
        nbytes = 0
        # Read from the start, a file is held back until it shows a transcript record:
        # a file of something else (``import /etc/passwd``) is skipped, nothing stored.
        held: _Held | None = _Held() if offset == 0 else None

        def save() -> None:
            nonlocal nbytes
            state = {"path": str(tf.path), "offset": offset, "line": line_no, "head": _digest(head[: min(_HEAD, offset)])}
            batch.checkpoint(key, state, nbytes)
            nbytes = 0

        for raw, masked in _masked_lines(handle, redactor):
            body = raw.rstrip(b"\r\n")
            if body and not body.isspace():
                if not raw.endswith(b"\n") and not _parses(body):
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
                warn(0, f"not a Claude Code transcript (no transcript record in its {lines}): skipped, nothing stored")
            return
        save()


_MASK_BLOCK = 1 << 20
"""Bytes of whole lines read and masked at a time (one scan for them all)."""


def _masked_lines(handle: BinaryIO, redactor: redact.Redactor) -> Iterator[tuple[bytes, bytes]]:
    """Each line as read, with its body (line end removed) masked; the lines are
    masked a block of about ``_MASK_BLOCK`` bytes at a time."""
    while block := handle.readlines(_MASK_BLOCK):
        for raw, masked in zip(block, redactor.redact_lines([raw.rstrip(b"\r\n") for raw in block]), strict=True):
            yield raw, masked


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
