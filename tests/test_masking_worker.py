"""The importer's masking in a worker process (``capture/masking.py``): the same
events as masking in the importer's process, on both recorded histories, the
invented secrets corpus, a large file read in blocks and a config of its own;
nothing lost when the worker raises or is killed; no worker left behind after
an error, Ctrl-C, or the importer killed outright; small imports and single
cores mask inline. Real worker processes, real stores, the real CLI."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from capture_helpers import events_by_id, interruptible, wait_for
from conftest import SAMPLE_DIRS, SHARED
from kapacitor.capture import client_config
from kapacitor.capture import importer
from kapacitor.capture.importer import ImportSummary, import_paths
from kapacitor.capture.masking import WORKER_FROM, Masker, spare_core
from kapacitor.capture.synthetic import replicate
from kapacitor.normalize import redact
from kapacitor.store import open_store
from redaction_corpus import SECRETS
from test_redaction_paths import SESSION, secret_values, write_session

HISTORY_332 = sorted((SHARED / "claude-code" / "recorded-2.1.332").glob("*/projects"))
CODENAME = "ACME-QWERTYUIOPAS"
"""A secret only the config file's own rule knows."""


def imported(paths: list[Path], db: Path, masker: Masker, **kwargs: object) -> tuple[dict, ImportSummary]:
    """The events an import of ``paths`` with ``masker`` stores, and its summary."""
    store = open_store(f"sqlite://{db}")
    try:
        summary = import_paths(store, paths, masker=masker, **kwargs)  # type: ignore[arg-type]
        return events_by_id(store), summary
    finally:
        store.close()


def history(tmp_path: Path) -> list[Path]:
    """Both recorded histories; the secrets corpus as a session, with a line
    only the config's own rule masks and a 2.5 MB file (masked in blocks); the
    corpus again under fresh ids in a directory the config switches redaction
    off for; and that config (an extra rule, an allowlist entry, the directory)."""
    projects = tmp_path / "projects"
    main = write_session(projects, str(tmp_path / "work"))
    record = json.loads(main.read_text().splitlines()[0])
    with main.open("a") as out:
        out.write(json.dumps({**record, "uuid": str(uuid.uuid4()), "message": {"role": "user", "content": f"the code name is {CODENAME}"}}) + "\n")
    lines = main.read_text()
    big = main.parent / "5ec2e7a1-0000-4000-8000-0000000b1600.jsonl"
    filler = json.dumps({**record, "uuid": str(uuid.uuid4()), "message": {"role": "user", "content": "build log line\n" * 60_000}})
    big.write_text((filler + "\n" + lines.replace(SESSION, big.stem)) * 2)
    assert big.stat().st_size > 2 * (1 << 20)
    write_session(tmp_path / "corpus" / "projects", str(tmp_path / "unmasked"))
    for _ in replicate(tmp_path / "corpus" / "projects", tmp_path / "unmasked-projects", 1):
        pass
    config = Path(client_config.config_file())
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"redaction": {
        "rules": [{"id": "acme-code-name", "regex": r"ACME-[A-Z]{12}", "keywords": ["acme-"]}],
        "allowlist": [r"^FAKE-ALLOWED-"], "off": [str(tmp_path / "unmasked")]}}))
    redact.reset()
    return [*SAMPLE_DIRS, *HISTORY_332, projects, tmp_path / "unmasked-projects"]


def test_the_worker_masks_byte_for_byte_what_the_importer_would(tmp_path):
    paths = history(tmp_path)
    worker, inline = Masker("worker", wait=True), Masker("inline")
    by_worker, summary = imported(paths, tmp_path / "worker.db", worker)
    assert by_worker == imported(paths, tmp_path / "inline.db", inline)[0]
    assert worker.inline_bytes == 0 and worker.worker_bytes == inline.inline_bytes > 3 << 20
    masked = json.dumps([(data, meta) for stream, _, data, meta in by_worker.values() if SESSION in stream])
    unmasked = json.dumps([(data, meta) for stream, _, data, meta in by_worker.values()])
    assert masked.count("[REDACTED ") > len(SECRETS) and "[REDACTED acme-code-name #" in masked and CODENAME not in masked
    assert not any(v in masked for v in secret_values()) and all(v in unmasked for v in secret_values()[:5])
    assert summary.errors == 0


def test_a_small_import_a_single_core_or_a_busy_machine_masks_inline(tmp_path, monkeypatch):
    assert spare_core(2, 0.9) and spare_core(8, 7.0) and spare_core(4, 0.0)
    assert not spare_core(2, 1.1) and not spare_core(2, 8.0) and not spare_core(1, 0.0) and not spare_core(8, 7.1)
    monkeypatch.setenv("KAPACITOR_MASKING", "inline")
    assert Masker(expected_bytes=1 << 30).mode == "inline"
    monkeypatch.setenv("KAPACITOR_MASKING", "worker")
    with Masker(expected_bytes=1000) as forced:
        assert forced.mode == "worker" and forced.pid is not None
    monkeypatch.delenv("KAPACITOR_MASKING")
    assert Masker("auto", expected_bytes=WORKER_FROM - 1).mode == "inline"
    assert Masker("auto", expected_bytes=0).mode == "inline"
    masker = Masker("auto")  # size unknown: a worker only once WORKER_FROM bytes were masked inline
    imported([*SAMPLE_DIRS, *HISTORY_332], tmp_path / "small.db", masker)
    assert masker.pid is None and masker.worker_bytes == 0 and 0 < masker.inline_bytes < WORKER_FROM
    one_core = ("import os; from kapacitor.capture.masking import Masker; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
                "print(Masker('auto', expected_bytes=1 << 30).mode)")
    assert subprocess.run([sys.executable, "-c", one_core], capture_output=True, text=True, check=True).stdout.strip() == "inline"


def test_a_batch_the_worker_fails_on_is_masked_by_the_importer_and_the_worker_goes_on(caplog):
    """The worker out of memory for one batch (its address space capped just
    above what it uses, then uncapped): that batch masked here, one log line,
    the next one masked in the worker again."""
    rules = redact.default(accelerate=True)
    lines = [b'{"content": "export DB_PASSWORD=hunter2hunter"}\n', b'{"content": "nothing here"}\n' * 3]
    big = [lines[0] + b'{"content": "nothing here"}\n' * 400_000]  # 11 MB
    with Masker("worker", wait=True) as masker:
        first = masker.submit(rules, lines).result()
        with open(f"/proc/{masker.pid}/status") as status:
            used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        unlimited = resource.prlimit(masker.pid, resource.RLIMIT_AS)
        resource.prlimit(masker.pid, resource.RLIMIT_AS, (used + (4 << 20), unlimited[1]))
        with caplog.at_level(logging.WARNING, "kapacitor.capture.masking"):
            failed = masker.submit(rules, big).result()
        resource.prlimit(masker.pid, resource.RLIMIT_AS, unlimited)
        after = masker.submit(rules, lines).result()
    assert first == after == rules.masked_lines(lines) and first[0] and failed == rules.masked_lines(big)
    assert [r.getMessage() for r in caplog.records] == [
        "masking worker: MemoryError: masking this batch in the importer's process"]
    assert masker.worker_bytes == 2 * sum(map(len, lines)) and masker.inline_bytes == sum(map(len, big))


def replicated(tmp_path: Path, copies: int) -> Path:
    """``copies`` of the 2.1.332 history under fresh ids (1.4 MB each)."""
    data = tmp_path / "data"
    for source in HISTORY_332:
        for _ in replicate(source, data / source.parent.name, copies):
            pass
    return data


def test_a_worker_killed_mid_import_loses_nothing_and_the_progress_adds_up(tmp_path, caplog, monkeypatch):
    """Killed when the first batch is stored: the batch in flight and every
    later one are masked in the importer, with one log line."""
    monkeypatch.setattr(importer, "BATCH_EVENTS", 100)  # the first batch stored while the second is masked
    data = replicated(tmp_path, 5)  # 5.2 MB: five batches to mask
    expected, whole = imported([data], tmp_path / "inline.db", Masker("inline"))
    masker = Masker("worker", wait=True)
    progressed: list[int] = []

    def progress(nbytes: int, added: int) -> None:
        if not progressed:
            os.kill(masker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        progressed.append(nbytes)

    with caplog.at_level(logging.WARNING, "kapacitor.capture.masking"):
        events, summary = imported([data], tmp_path / "worker.db", masker, progress=progress)
    assert events == expected and summary.events_added == whole.events_added
    assert len(progressed) >= 2 and sum(progressed) == summary.bytes == whole.bytes
    assert masker.worker_bytes > 0 and masker.inline_bytes > 0
    assert [r.getMessage() for r in caplog.records] == [
        "masking worker stopped (exit code -9): masking in the importer's process from here on"]


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_an_import_that_fails_leaves_no_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_EVENTS", 300)
    data = replicated(tmp_path, 2)
    masker = Masker("worker", wait=True)

    def progress(nbytes: int, added: int) -> None:
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="the disk is full"):
        imported([data], tmp_path / "failed.db", masker, progress=progress)
    assert masker.pid is not None and gone(masker.pid)


def masking_worker_of(pid: int) -> int | None:
    """The masking worker among process ``pid``'s children."""
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        for child in map(int, listed.read().split()):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as command:
                    if b"masking_worker" in command.read():
                        return child
            except FileNotFoundError:
                continue
    return None


@pytest.mark.slow
def test_ctrl_c_stops_the_import_and_its_worker(tmp_path):
    """Ctrl-C in the terminal (SIGINT to the import's process group): one line,
    no traceback, no worker left; a rerun then imports the rest, and the store
    is what one whole import makes."""
    data = replicated(tmp_path, 8)  # 8.4 MB: a worker from the start (whatever the load: KAPACITOR_MASKING)
    env = {**os.environ, "KAPACITOR_STORE": f"sqlite://{tmp_path / 'events.db'}", "KAPACITOR_MASKING": "worker"}
    cli = [sys.executable, "-c", "from kapacitor.entry import main; main()", "import"]
    process = subprocess.Popen([*cli, str(data)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               preexec_fn=interruptible)
    worker = wait_for(lambda: process.poll() is None and masking_worker_of(process.pid), timeout=60)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1 and b"Aborted!" in err and b"Traceback" not in err, err
    wait_for(lambda: gone(worker), timeout=10)
    subprocess.run([*cli, str(data)], env=env, capture_output=True, check=True)
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    try:
        assert events_by_id(store) == imported([data], tmp_path / "whole.db", Masker("inline"))[0]
    finally:
        store.close()


def test_an_importer_killed_outright_leaves_no_worker(tmp_path):
    data = replicated(tmp_path, 1)
    script = f"""
import time
from pathlib import Path
from kapacitor.capture import importer
from kapacitor.capture.masking import Masker
from kapacitor.store import open_store
importer.BATCH_EVENTS = 100
masker = Masker("worker", wait=True)
def progress(nbytes, added):
    print(masker.pid, flush=True)
    time.sleep(600)
importer.import_paths(open_store("sqlite://{tmp_path / 'killed.db'}"), [Path("{data}")], progress=progress, masker=masker)
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(process.stdout.readline())  # type: ignore[union-attr]
    assert not gone(worker)
    process.kill()
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    wait_for(lambda: gone(worker), timeout=10)


def test_an_importer_with_over_1024_files_open_still_hands_batches_to_the_worker():
    """``select`` refuses a descriptor numbered 1,024 or more (a CI run failed
    so, its pytest process holding that many); the worker's socket is polled."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    rules = redact.default(accelerate=True)
    lines = [b'{"content": "export DB_PASSWORD=hunter2hunter"}\n']
    try:
        assert held[-1] >= 1024
        with Masker("worker") as masker:  # not ``wait``: each batch polls the starting worker

            def masked_in_the_worker() -> bool:
                assert masker.submit(rules, lines).result() == rules.masked_lines(lines)
                return masker.worker_bytes > 0

            wait_for(masked_in_the_worker)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
