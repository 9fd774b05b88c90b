"""Where the capture client keeps its things, and which server it talks to.

Stdlib only: the hook imports this on every agent action, so it cannot afford
``platformdirs``. The directories are the ones ``platformdirs`` gives on Linux
and macOS (a test keeps them equal): config in the user config dir, offsets,
spools and the failure log in the user state dir.

The server URL and token come from ``$KAPACITOR_SERVER`` / ``$KAPACITOR_TOKEN``,
else ``<config dir>/client.json`` (written by ``kapacitor setup``), else the
embedded default server on 127.0.0.1 with no token.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time

APP = "kapacitor"
DEFAULT_SERVER = "http://127.0.0.1:7227"
_MAC = sys.platform == "darwin"


def _xdg(var: str, default: str) -> str:
    value = os.environ.get(var, "").strip()
    return value or os.path.join(os.path.expanduser("~"), default)


def config_dir() -> str:
    if _MAC:
        return os.path.expanduser("~/Library/Application Support/" + APP)
    return os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), APP)


def state_dir() -> str:
    if _MAC:
        return os.path.expanduser("~/Library/Application Support/" + APP)
    return os.path.join(_xdg("XDG_STATE_HOME", ".local/state"), APP)


def config_file() -> str:
    return os.path.join(config_dir(), "client.json")


def log_file() -> str:
    return os.path.join(state_dir(), "capture.log")


class ClientConfig:
    """The server the capture client sends to, and its bearer token ("" for none).
    (A plain class: ``dataclasses`` costs the hook an import of ``inspect``.)"""

    __slots__ = ("server", "token")

    def __init__(self, server: str = DEFAULT_SERVER, token: str = ""):
        self.server, self.token = server, token

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientConfig) and (self.server, self.token) == (other.server, other.token)

    def __repr__(self) -> str:
        return f"ClientConfig(server={self.server!r}, token={'***' if self.token else ''!r})"


def _saved() -> dict:
    try:
        with open(config_file(), "rb") as handle:
            loaded = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def redaction_config() -> dict:
    """The config file's ``"redaction"`` object: ``rules`` to add, ``allowlist``
    regexes, ``off`` (directories where nothing is masked), ``enabled``
    (docs/redaction.md)."""
    section = _saved().get("redaction")
    return section if isinstance(section, dict) else {}


def load() -> ClientConfig:
    saved = _saved()
    server = os.environ.get("KAPACITOR_SERVER") or saved.get("server") or DEFAULT_SERVER
    token = os.environ.get("KAPACITOR_TOKEN") or saved.get("token") or ""
    return ClientConfig(server=str(server).rstrip("/"), token=str(token))


def save(config: ClientConfig, exclude: list[str] | None = None) -> str:
    """Write the config file, readable by the user only (it holds the token);
    ``exclude`` replaces the excluded directories, None keeps them; its other
    settings (``redaction``) are kept."""
    path = config_file()
    document = {**_saved(), "server": config.server, "token": config.token}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    kept = document.get("exclude") if exclude is None else exclude
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({**document, "exclude": kept or []}, handle, indent=1)
    os.replace(tmp, path)
    return path


def excluded_dirs() -> list[str]:
    """Directories (``~`` allowed, shell patterns too) whose sessions never leave
    this machine: ``exclude`` in the config file (``kapacitor setup --exclude DIR``)."""
    dirs = _saved().get("exclude")
    return [str(d) for d in dirs if isinstance(d, str) and d] if isinstance(dirs, list) else []


def excluded(cwd: str) -> bool:
    """Is ``cwd`` one of the excluded directories or inside one? The hook asks this
    before sending or spooling anything, so nothing of such a session is captured."""
    if not cwd:
        return False
    path = os.path.normpath(cwd)
    for pattern in excluded_dirs():
        pattern = os.path.normpath(os.path.expanduser(pattern))
        probe = path
        while True:
            if fnmatch.fnmatchcase(probe, pattern):
                return True
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
    return False


LOG_LIMIT = 4 << 20
"""The log is moved to ``capture.log.1`` (replacing the older one) past this size."""


def log_failure(message: str) -> None:
    """One line in the capture log; never raises (the agent must not notice)."""
    try:
        path = log_file()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = f"{stamp} pid={os.getpid()} {' '.join(message.split())[:2000]}\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
            if os.fstat(fd).st_size > LOG_LIMIT:
                os.replace(path, path + ".1")
        finally:
            os.close(fd)
    except OSError:
        pass
