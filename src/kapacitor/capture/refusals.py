"""Why a session's batches wait in the spool, and what to do about it: the one
wording ``kapacitor doctor``, ``sync`` and ``watch`` give.

A batch waits in the spool, in order, when the server did not answer (down,
restarting, too slow) or answered a status that a resend cannot change until
someone acts (``sender.classify``): 401, the token; 403 or 404, a session that
is not the token's user's to write (another user's, or imported on the
server: 404 when they may not even see it, the answer every read route
gives). Nothing is lost meanwhile: the hooks, followers and ``kapacitor sync``
send it again and it arrives once the cause is gone.
"""

from __future__ import annotations

from kapacitor.capture.sender import REFUSED


def refused(status: int) -> bool:
    """Did the server answer, and refuse (rather than not answer, or be busy)?"""
    return status in REFUSED


def answer(server: str, status: int, detail: str) -> str:
    """The server's answer in a clause: ``http://h:7227 answered HTTP 404: …``,
    or ``http://h:7227 did not take it (…)`` when it did not answer."""
    if status:
        return f"{server} answered {detail[:300]}"
    return f"{server} did not take it ({detail[:300]})" if detail else f"{server} did not take it"


def fix(status: int, server: str) -> str:
    """What to do for a spool stopped by ``status`` (0: no answer)."""
    kept = "the spool is kept and sent by itself once the server takes it"
    owner = ("a session is sent by its owner, with their token (a transcript copied from someone else stays "
             "theirs; an admin can `kapacitor import` it on the server)")
    if status == 401:
        return (f"the server refuses this machine's token (none, unknown or revoked): get one from its admin "
                f"(`kapacitor tokens create --user NAME` on the server) and give it with "
                f"`kapacitor setup --server {server} --token-file FILE`; {kept}")
    if status == 403:
        return (f"the session is another user's, or was imported on the server: {owner} (or, when the answer "
                f"says the server has no token, its admin sets tokens up: docs/team.md); {kept}")
    if status == 404:
        return (f"the token's user may not see the session (another user's: the server answers as if it did not "
                f"exist): {owner}; if the answer is not Kapacitor's, check the server URL "
                f"(`kapacitor setup --server URL`); {kept}")
    return f"start the server (or wait for it), then `kapacitor sync`; {kept}"
