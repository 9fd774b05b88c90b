"""Context the client or an IDE puts into a prompt: not the user's words.

The VS Code and JetBrains extensions prepend ``<ide_opened_file>`` or
``<ide_selection>`` blocks to what the user typed; the client adds
``<system-reminder>`` blocks, hook output and command caveats. ``split_injected``
separates them, so titles, prompt counts and search see only the words the user
typed, and the chat can show the context apart.
"""

from __future__ import annotations

import re

INJECTED_TAGS = (
    "ide_opened_file",
    "ide_selection",
    "ide_diagnostics",
    "system-reminder",
    "user-prompt-submit-hook",
    "local-command-caveat",
)
_BLOCK = re.compile(
    r"<(" + "|".join(re.escape(t) for t in INJECTED_TAGS) + r")>(.*?)</\1>\s*", re.DOTALL | re.IGNORECASE
)


def split_injected(text: str) -> tuple[str, list[dict[str, str]]]:
    """(the user's words, the injected blocks as ``{"kind": tag, "text": inner}``).
    Text without such blocks comes back unchanged with an empty list."""
    if "<" not in text:
        return text, []
    injected = [{"kind": m.group(1).lower(), "text": m.group(2).strip()} for m in _BLOCK.finditer(text)]
    if not injected:
        return text, []
    return _BLOCK.sub("", text).strip(), injected
