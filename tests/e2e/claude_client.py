"""The real Claude Code CLI (npm ``@anthropic-ai/claude-code``, installed by
``scripts/test`` into ``.tooling/``), run headless against the fake model in a
temporary HOME where ``kapacitor setup`` installed the hooks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = json.loads((Path(__file__).with_name("package.json")).read_text())["dependencies"]["@anthropic-ai/claude-code"]
CLAUDE = Path(os.environ.get("CLAUDE_BIN", ROOT / ".tooling" / "node_modules" / ".bin" / "claude"))


def client_env(model_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
    env.update(
        ANTHROPIC_BASE_URL=model_url,
        ANTHROPIC_API_KEY="sk-ant-api03-fake-key-for-the-offline-e2e-tests",
        DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY="1",
        IS_SANDBOX="1",  # as root, --dangerously-skip-permissions needs it
        KAPACITOR_FOLLOW_IDLE="60",
    )
    return env


def start(prompt: str, cwd: Path, model_url: str, *args: str, resume: str | None = None) -> subprocess.Popen[str]:
    """``claude -p PROMPT`` in the background (stream-json on stdout)."""
    cmd = [str(CLAUDE), "-p", prompt, "--output-format", "stream-json", "--verbose", *args]
    if resume:
        cmd += ["--resume", resume]
    return subprocess.Popen(cmd, cwd=cwd, env=client_env(model_url), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120, *, ok: bool = True) -> str:
    """Wait for the client (that it succeeded, unless not ``ok``); its session id
    (from the stream's init message)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0 or not ok, f"claude exited {proc.returncode}: {err[-2000:]}"
    for line in out.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("type") == "system" and message.get("subtype") == "init":
            return str(message["session_id"])
    raise AssertionError(f"no init message from claude: {out[-2000:]}")


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for cmd in (["init", "-q", "-b", "main"], ["config", "user.email", "dev@example.com"], ["config", "user.name", "Dev"],
                ["remote", "add", "origin", "git@github.com:acme/greeter.git"]):
        subprocess.run(["git", *cmd], cwd=path, check=True)
    (path / "README.md").write_text("# greeter\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True)
    return path
