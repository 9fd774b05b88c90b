"""What the machine knows about a session's working directory: its GitHub
repository (from the git remote, when the directory still exists) and the user.

Read from git's config files directly, not by running ``git``: the hook works
this out for a session's first batch while the agent waits for it, and a
subprocess (with its imports) costs more than the hook's whole budget. Stdlib
only (no ``subprocess``, ``pathlib`` or ``getpass``). The files are git's, in
its order (later wins): ``/etc/gitconfig``, ``$XDG_CONFIG_HOME/git/config``,
``~/.gitconfig``, then the repository's ``config`` (a worktree's common dir
included); ``[include] path`` is followed, ``[includeIf]`` is not.
"""

from __future__ import annotations

import os
import re

from kapacitor.normalize import redact

_GITHUB = re.compile(r"github\.com[:/]+([A-Za-z0-9_.\-]+)/([A-Za-z0-9_.\-]+?)(?:\.git)?/?$")
_SECTION = re.compile(r'\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')


def github_repository(remote_url: str) -> str | None:
    """``owner/repo`` for a GitHub remote URL (ssh, https or ssh://), else None."""
    match = _GITHUB.search(remote_url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def resolve_context(cwd: str) -> dict[str, object]:
    """Repository, remote and user for ``cwd``; fields are left out when unknown."""
    context: dict[str, object] = {}
    exists = bool(cwd) and os.path.isdir(cwd)
    config = read_config(git_dir(cwd) if exists else None)
    remote = config.get("remote.origin.url", "")
    if exists and remote:
        context["remote_url"] = redact.redact(remote)
        repository = github_repository(remote)
        if repository:
            context["repository"] = repository
    context["user"] = config.get("user.email", "") or _os_user()
    return context


def repository_of(cwd: str) -> str | None:
    """``owner/repo`` of the GitHub repository ``cwd`` is in (its ``origin``
    remote), else None: what the SessionStart hook recalls facts for."""
    gitdir = git_dir(cwd) if cwd else None
    remote = read_config(gitdir).get("remote.origin.url", "") if gitdir else ""
    return github_repository(remote) if remote else None


def project_of(cwd: str) -> str:
    """Where a working directory's sessions belong, and so the scope of its facts:
    its GitHub ``owner/repo``, else the directory itself (absolute, as the client
    records a session's cwd): the same group the session list and ``/repos/``
    use. "" for no directory."""
    if not cwd:
        return ""
    return repository_of(cwd) or os.path.normpath(os.path.abspath(cwd))


def git_dir(cwd: str) -> str | None:
    """The repository's git dir for a working directory (walking up), or None."""
    directory = os.path.abspath(cwd)
    while True:
        dot_git = os.path.join(directory, ".git")
        if os.path.isdir(dot_git):
            return dot_git
        if os.path.isfile(dot_git):  # a worktree or submodule: "gitdir: <path>"
            try:
                with open(dot_git, encoding="utf-8") as handle:
                    line = handle.readline().strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                return os.path.normpath(os.path.join(directory, line[len("gitdir:") :].strip()))
            return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def read_config(gitdir: str | None) -> dict[str, str]:
    """git's effective settings as ``section[.subsection].key`` (keys lowercased):
    system, global, then the repository's."""
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    system = [] if os.environ.get("GIT_CONFIG_NOSYSTEM") else ["/etc/gitconfig"]
    global_ = os.environ.get("GIT_CONFIG_GLOBAL")
    files = [*system, *([global_] if global_ else [os.path.join(xdg, "git", "config"), os.path.join(home, ".gitconfig")])]
    if gitdir:
        common = gitdir
        try:
            with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as handle:
                common = os.path.normpath(os.path.join(gitdir, handle.read().strip()))
        except OSError:
            pass
        files.append(os.path.join(common, "config"))
    settings: dict[str, str] = {}
    for path in files:
        _read(path, settings, depth=0)
    return settings


def _read(path: str, settings: dict[str, str], depth: int) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    section = ""
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if match is None:
                continue
            name, sub = match.group(1).lower(), match.group(2)
            section = f"{name}.{sub.replace(chr(92) + chr(34), chr(34))}" if sub is not None else name
            line = line[match.end() :].strip()
            if not line:
                continue
        key, _, value = line.partition("=")
        name = f"{section}.{key.strip().lower()}"
        value = _value(value) if _ else "true"
        if name == "include.path" and depth < 10:
            _read(os.path.join(os.path.dirname(path), os.path.expanduser(value)), settings, depth + 1)
        else:
            settings[name] = value


def _value(text: str) -> str:
    """A config value: quotes removed, escapes resolved, a trailing comment cut."""
    out, quoted, i = [], False, 0
    text = text.strip()
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in "#;" and not quoted:
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def _os_user() -> str:
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return ""
