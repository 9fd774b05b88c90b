"""Redaction switched off per repository (``"redaction": {"off": ["owner/repo"]}``)
on import and on ingest, as the hook and the follower already do it
(``test_hook.py::test_redaction_is_off_for_a_repository_the_config_names``):
real clones with git remotes, real transcript files, the real server with a
config of its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from capture_helpers import Server
from kapacitor.capture import client_config
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store

SECRET = "DB_PASSWORD=hunter2hunter"
MASKED = "DB_PASSWORD=[REDACTED password #"


def switch_off(config_home: Path | None, *entries: str) -> None:
    """The config file (the client's, or a server's under ``config_home``) switching redaction off for ``entries``."""
    path = Path(client_config.config_file()) if config_home is None else config_home / "kapacitor" / "client.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"redaction": {"off": list(entries)}}))


def clone(root: Path, remote: str) -> Path:
    """A git working copy whose origin is ``remote``; the working directory in it."""
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {remote}\n')
    (root / "pkg").mkdir()
    return root / "pkg"


def record(session: str, cwd: str, text: str, n: int = 0) -> dict:
    return {"type": "user", "uuid": f"0000000{n}-0000-4000-8000-{session[-12:]}", "parentUuid": None, "sessionId": session,
            "timestamp": f"2026-11-29T10:00:0{n}.000Z", "cwd": cwd, "version": "2.1.332", "gitBranch": "main",
            "message": {"role": "user", "content": text}}


def stored_texts(db: Path) -> dict[str, str]:
    """Each session's stored events as one text (data and metadata, the raw lines included)."""
    store = open_store(f"sqlite://{db}")
    try:
        out: dict[str, str] = {}
        for event in store.read_all():
            session = event.stream.split("-", 1)[1][:36]
            out[session] = out.get(session, "") + json.dumps([event.data, event.metadata])
        return out
    finally:
        store.close()


def test_import_leaves_a_session_in_a_repository_the_config_switches_off_as_is(tmp_path):
    """The repository is the git remote of the directory the session's records
    name (what the session is stored with), whatever the clone's path; a session
    whose directory is gone has no known repository and is masked."""
    switch_off(None, "Acme/Secret-Lab")
    sessions = {
        "lab": ("5ec2e7a1-0000-4000-8000-00000000001a", clone(tmp_path / "anywhere" / "lab", "git@github.com:acme/secret-lab.git")),
        "widgets": ("5ec2e7a1-0000-4000-8000-00000000002b", clone(tmp_path / "widgets", "https://github.com/acme/widgets.git")),
        "gone": ("5ec2e7a1-0000-4000-8000-00000000003c", tmp_path / "deleted" / "lab" / "pkg"),
    }
    projects = tmp_path / "projects"
    for session, cwd in sessions.values():
        folder = projects / "".join(c if c.isalnum() else "-" for c in str(cwd))
        folder.mkdir(parents=True)
        lines = [{"type": "file-history-snapshot", "messageId": "m", "snapshot": {}}, record(session, str(cwd), f"run it with {SECRET}")]
        (folder / f"{session}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = open_store(f"sqlite://{tmp_path / 'imported.db'}")
    import_paths(store, [projects])
    store.close()
    texts = stored_texts(tmp_path / "imported.db")
    lab, widgets, gone = (texts[sessions[name][0]] for name in ("lab", "widgets", "gone"))
    assert SECRET in lab and '"repository": "acme/secret-lab"' in lab
    assert SECRET not in widgets and MASKED in widgets
    assert SECRET not in gone and MASKED in gone


def test_ingest_leaves_a_session_in_a_repository_the_servers_config_switches_off_as_is(tmp_path):
    """Ingest masks again what a client sends; the server's own config file says
    where it does not: here a client of an older version sends everything in
    clear. The repository comes from the batch's context, else (a hook's batch)
    from the session's ``SessionStarted``; unknown, the batch is masked."""
    server_config = tmp_path / "server-config"
    switch_off(server_config, "acme/secret-lab")
    server = Server(tmp_path / "live.db", None, XDG_CONFIG_HOME=str(server_config)).start()
    lab, widgets, nowhere = ("5ec2e7a1-0000-4000-8000-00000000001a", "5ec2e7a1-0000-4000-8000-00000000002b",
                             "5ec2e7a1-0000-4000-8000-00000000003c")

    def post(session: str, repository: str | None, *, lines: bool, n: int = 0) -> None:
        cwd = f"/home/dev/src/{session[-4:]}"
        batch: dict = {"v": 1, "agent": "claude-code", "session_id": session,
                       "hook": {"event": "PostToolUse", "at": f"2026-11-29T10:00:0{n}.000000Z",
                                "payload": {"session_id": session, "cwd": cwd, "tool_response": {"stdout": f"{SECRET} {n}"}}},
                       "transcripts": []}
        if lines:
            text = json.dumps(record(session, cwd, f"run it with {SECRET}", n))
            batch["context"] = {"user": "dev@acme.test", **({"repository": repository} if repository else {})}
            batch["transcripts"] = [{"path": f"/home/dev/.claude/projects/x/{session}.jsonl", "lines": [{"o": 0, "n": 0, "t": text}]}]
        status, answer = server.post(f"/api/ingest/sessions/{session}/batches", json.dumps(batch).encode())
        assert status == 200, answer

    try:
        post(lab, "acme/secret-lab", lines=True)
        post(lab, None, lines=False, n=1)  # a hook's batch: no context
        post(widgets, "acme/widgets", lines=True)
        post(widgets, None, lines=False, n=1)
        post(nowhere, None, lines=False)
    finally:
        server.stop()
    texts = stored_texts(tmp_path / "live.db")
    assert texts[lab].count(SECRET) >= 4 and MASKED not in texts[lab]  # the prompt (event and raw line) and both payloads
    for session in (widgets, nowhere):
        assert SECRET not in texts[session] and MASKED in texts[session]
    assert not os.path.exists(client_config.config_file())  # the client's config played no part
