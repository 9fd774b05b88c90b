"""One summary per session, folded from its events: who, where, when, how much.

A pure fold (``SessionSummaries.apply`` one event at a time), so the same code
serves ``kapacitor sessions`` over the whole log and a checkpointed read model
that applies only new events.

Tokens are counted once per API call. Claude Code writes one line per content
block and repeats the call's usage on each; while streaming, earlier lines may
carry partial output counts. So usage is keyed by (message id, request id) and
each field keeps its largest value seen.

Across sessions, each record is counted once, by the session that owns it
(``ownership``): an event a resumed or forked session inherited adds to its
``inherited_events`` and its chain, nothing else. A message the client wrote
itself (model ``<synthetic>``) carries no usage, so it is no request.

Cost is per model and partial: ``cost()`` prices what it can, ``unpriced_tokens``
says how many tokens of which models have no price.

A session's time (``started``, ``ended``, duration, active time) is its
conversation's: the times of its transcript records, as an import sees them.
Live capture also stores what the client's hooks sent (``from_hook``: a
``HookReceived`` per hook, a ``SessionEnded`` at SessionEnd, stamped when the
hook ran, to the microsecond); those are counted apart (``hook_events``) and
never move the session's time, so a live session and an import of its
transcript show the same start, end, duration and event count. Only while no
record has arrived yet (a live session seconds old) do the hooks' times stand
in, so the session is listed by when it began.

Active time is the session's time minus its idle gaps: the event times are kept
as spans, and a gap longer than ``IDLE_SECONDS`` between two events splits them
(``active_seconds``), so a session resumed days later is not counted as days of
work. Spans merge the same whatever order the events come in (a subagent's
transcript is often read after its parent's).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Protocol

from kapacitor import times
from kapacitor.envelope import TOKEN_FIELDS, USAGE_METADATA_KEY, RecordedEvent
from kapacitor.normalize.redact import shortened
from kapacitor.pricing import cost_of, price_source
from kapacitor.projections.ownership import Owners, leaf_key
from kapacitor.projections.session_keys import shared_keys, total_tokens

CALL_FACTS = ("thinking_tokens", "requested_model", "effort")
"""Per-call facts newer clients report beside the tokens (kept on ``Call.usage``)."""
IDLE_SECONDS = 600
"""A pause longer than this between two events of a session is idle time, not
active time: ten minutes, the longest a Bash tool call may run, so a long build
counts as work."""
AGENT_TOOLS = ("Agent", "Task")
"""The tools that run a subagent (``Task`` before 2.1.x renamed it)."""
FILE_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}


@dataclass
class Call:
    """One API call's usage, as far as seen."""

    model: str
    usage: dict[str, int]
    subagent: str | None


@dataclass
class SessionSummary:
    session_id: str
    agent: str = ""
    agent_version: str = ""
    title: str = ""
    repository: str | None = None
    remote_url: str | None = None
    cwd: str = ""
    branch: str = ""
    user: str = ""
    started: str = ""
    ended: str = ""
    end_reason: str = ""
    prompts: int = 0
    commands: int = 0
    tool_calls: Counter[str] = field(default_factory=Counter)
    tool_errors: int = 0
    files_changed: set[str] = field(default_factory=set)
    subagents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[tuple[str, str], Call] = field(default_factory=dict)
    events: int = 0
    """Events from the session's transcripts (what an import of them gives)."""
    hook_events: int = 0
    """Events live capture made from the client's hooks (``from_hook``): 0 for an import."""
    timed_by_hooks: bool = False
    """``started``/``ended`` are hook times: no transcript record has a time yet."""
    inherited_events: int = 0
    """Events replayed from sessions that own them (shown as history, not counted)."""
    continued_from: list[str] = field(default_factory=list)
    continued_in: list[str] = field(default_factory=list)
    title_rank: int = 0
    """Where the title came from: 0 the first prompt, 1 another session's summary
    naming this one, 2 a title record of this session's own."""
    client_costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The client's own latest ``cost-state`` per client process (by its start time)."""
    denials: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per tool: ``count`` of denied calls and ``by`` (who or what denied them: count)."""
    model_switches: list[dict[str, Any]] = field(default_factory=list)
    commands_not_run: int = 0
    active_spans: list[list[float]] = field(default_factory=list)
    """Sorted [first, last] event times (Unix seconds) of the stretches of activity,
    each more than ``IDLE_SECONDS`` apart (see ``add_activity``)."""
    subagent_spans: dict[str, list[str]] = field(default_factory=dict)
    """Per subagent: [first, last] time (ISO 8601) of its own transcript records."""
    agent_call_errors: dict[str, str] = field(default_factory=dict)
    """Per Agent/Task call id whose result is an error: that result (its first
    ``RESULT_CHARS``), the outcome of the synchronous subagent the call ran
    (``subagent_status``; the error carries no agent id, the subagent's
    ``tool_use_id`` links them)."""
    _pending_files: dict[str, str] = field(default_factory=dict, repr=False)
    _open_calls: dict[str, str] = field(default_factory=dict, repr=False)
    _failed_calls: dict[str, str] = field(default_factory=dict, repr=False)

    def tokens(self, subagent: str | None = "*") -> dict[str, dict[str, int]]:
        """Per model: the token fields summed and the number of requests. ``subagent``
        ``"*"`` means everything, ``None`` the main agent only, an id that subagent."""
        out: dict[str, dict[str, int]] = {}
        for call in self.calls.values():
            if subagent != "*" and call.subagent != subagent:
                continue
            totals = out.setdefault(call.model, dict.fromkeys(TOKEN_FIELDS, 0) | {"requests": 0})
            totals["requests"] += 1
            for name in TOKEN_FIELDS:
                totals[name] += call.usage.get(name, 0)
        return out

    def cost(self) -> Decimal | None:
        """USD for the calls whose model has a price: the priced part, with
        ``unpriced_tokens`` counting the rest, so one unpriced model never blanks
        the whole. ``Decimal(0)`` for a session without API calls; None when it
        has calls and none of their models has a price (an unknown cost is not
        shown as free)."""
        priced = [price for price in self.cost_per_model().values() if price is not None]
        return sum(priced, Decimal(0)) if priced or not self.calls else None

    def cost_per_model(self, subagent: str | None = "*") -> dict[str, Decimal | None]:
        """Per model: USD for its priced calls, each call priced on its own (prices
        may depend on a call's size); None for a model none of whose calls has a price.
        ``subagent`` as for ``tokens``."""
        out: dict[str, Decimal | None] = {}
        for call in self.calls.values():
            if subagent != "*" and call.subagent != subagent:
                continue
            price, known = cost_of(call.model, call.usage), out.get(call.model)
            out[call.model] = known if price is None else (known or Decimal(0)) + price
        return out

    def add_time(self, stamp: str, hook: bool = False) -> None:
        """Widen ``started``/``ended`` to ``stamp`` (ISO 8601). A record's time
        (``hook`` false) also counts as activity and, once one arrives, replaces
        any hook times; a hook's time counts only while no record has one."""
        if hook:
            if self.started and not self.timed_by_hooks:
                return
            self.timed_by_hooks = True
        elif self.timed_by_hooks:
            self.started = self.ended = ""
            self.timed_by_hooks = False
        if not self.started or stamp < self.started:
            self.started = stamp
        if stamp > self.ended:
            self.ended = stamp
        if not hook:
            self.add_activity(stamp)

    def add_activity(self, stamp: str) -> None:
        """Count the moment ``stamp`` as activity: it joins the span it is within
        ``IDLE_SECONDS`` of (bridging two spans if it closes their gap), or starts one."""
        moment = times.parse(stamp)
        if moment is None:
            return
        t, spans = moment.timestamp(), self.active_spans
        i = bisect.bisect_right(spans, t, key=lambda span: span[0])  # spans[i - 1] starts at or before t
        if i and t <= spans[i - 1][1] + IDLE_SECONDS:
            left = spans[i - 1]
            left[1] = max(left[1], t)
            if i < len(spans) and spans[i][0] - left[1] <= IDLE_SECONDS:
                left[1] = max(left[1], spans.pop(i)[1])
        elif i < len(spans) and spans[i][0] - t <= IDLE_SECONDS:
            spans[i][0] = t
        else:
            spans.insert(i, [t, t])

    def active_seconds(self) -> float:
        """Seconds of activity: the spans' lengths summed (idle gaps left out)."""
        return round(sum(last - first for first, last in self.active_spans), 3)

    def unpriced_tokens(self) -> dict[str, int]:
        """Per model without a price: its tokens (input, output, cache read and
        write), which ``cost()`` leaves out."""
        out: dict[str, int] = {}
        for call in self.calls.values():
            if cost_of(call.model, call.usage) is None:
                out[call.model] = out.get(call.model, 0) + sum(call.usage.get(n, 0) for n in TOKEN_FIELDS[:4])
        return out

    def thinking_tokens(self) -> dict[str, int]:
        """Per model: the output tokens that were thinking, where the API reported it."""
        out: dict[str, int] = {}
        for call in self.calls.values():
            if "thinking_tokens" in call.usage:
                out[call.model] = out.get(call.model, 0) + int(call.usage["thinking_tokens"])
        return out

    def model_requests(self) -> list[dict[str, Any]]:
        """Calls grouped by the model asked for, the model that answered and the
        effort (newer clients say what was asked; older ones only what answered)."""
        groups: Counter[tuple[str, str, str]] = Counter()
        for call in self.calls.values():
            groups[(str(call.usage.get("requested_model", "")), call.model, str(call.usage.get("effort", "")))] += 1
        return [{"requested": r, "served": s, "effort": e, "requests": n} for (r, s, e), n in sorted(groups.items())]

    def client_reported(self) -> dict[str, Any] | None:
        """What the client itself counted (``cost-state``, 2.1.3xx clients): usage and
        cost per model, summed over its processes, and the difference from ours,
        which is the requests no transcript line records (the ``/compact`` summary,
        side requests). None for clients that do not write it."""
        if not self.client_costs:
            return None
        models: dict[str, dict[str, Any]] = {}
        for state in self.client_costs.values():
            for model, usage in (state.get("model_usage") or {}).items():
                totals = models.setdefault(model, dict.fromkeys((*TOKEN_FIELDS, "thinking_tokens"), 0) | {"cost_usd": 0.0})
                for ours, theirs in _CLIENT_USAGE.items():
                    totals[ours] += int(usage.get(theirs) or 0)
                totals["cost_usd"] += float(usage.get("costUSD") or 0)
        cost = sum(float(state.get("total_cost_usd") or 0) for state in self.client_costs.values())
        ours = self.tokens()
        unrecorded = {
            model: {name: totals[name] - ours.get(model, {}).get(name, 0) for name in TOKEN_FIELDS}
            for model, totals in models.items()
        }
        our_cost = self.cost()
        return {
            "cost_usd": round(cost, 8),
            "tokens": models,
            "unrecorded_tokens": {m: t for m, t in unrecorded.items() if any(t.values())},
            # ``or 0.0``: a difference that rounds away is 0.0, never -0.0
            "unrecorded_cost_usd": None if our_cost is None else round(cost - float(our_cost), 8) or 0.0,
            "unknown_model_cost": any(state.get("has_unknown_model_cost") for state in self.client_costs.values()),
        }

    def duration_seconds(self) -> float | None:
        """From the session's first timestamped record to its last (subagents'
        included, hooks not: see the module docstring): the span the header, the
        list and the trace's root show."""
        return times.seconds_between(self.started, self.ended)

    def subagent_row(self, agent_id: str, live: bool) -> dict[str, Any]:
        """One entry of the row's ``subagents``: every key of ``SUBAGENT_DEFAULTS``,
        its ``status`` and ``reason`` (``subagent_status``) and its figures
        (``subagent_figures``)."""
        info = {k: v for k, v in self.subagents[agent_id].items() if k in SUBAGENT_DEFAULTS}
        status, reason = self.subagent_status(agent_id, live)
        return {"agent_id": agent_id, **SUBAGENT_DEFAULTS, **info, "status": status, "reason": reason, **self.subagent_figures(agent_id)}

    def subagent_figures(self, agent_id: str) -> dict[str, Any]:
        """What one subagent used, by the session's own rules, the one count the
        chat, the trace and the stats show: ``started``/``ended`` (its first and
        last transcript record, ISO 8601), ``duration_seconds`` (between them, as a
        session's duration; None before it has two times), ``tokens`` per model
        (as ``tokens``) and ``tokens_total`` (in + out + cache read + cache write,
        every model) over the API requests of its own transcript."""
        started, ended = self.subagent_spans.get(agent_id) or ("", "")
        tokens = self.tokens(agent_id)
        return {
            "started": started,
            "ended": ended,
            "duration_seconds": times.seconds_between(started, ended),
            "tokens": tokens,
            "tokens_total": total_tokens(tokens),
        }

    def subagent_status(self, agent_id: str, live: bool) -> tuple[str, str | None]:
        """Where one subagent stands, and why when that is known: the one rule the
        chat, the trace, the stats and ``sessions --json`` state.

        - its result says (the Agent call's, a background agent's task
          notification): ``completed``, ``failed``, ``killed``…, the
          notification's summary as the reason for any but ``completed``;
        - its Agent call came back an error (a synchronous subagent the API failed,
          or one its user interrupted): ``failed`` or ``interrupted``, the error;
        - its own transcript ends with an API error the client gave up on, or with
          an interrupt: ``failed`` or ``interrupted``, that record's text;
        - else, with no result: ``running`` while the session is ``live``
          (``live_status``: not ended), ``unknown`` once it is not."""
        entry = self.subagents.get(agent_id) or {}
        if entry.get("outcome"):
            return entry["outcome"], entry.get("reason")
        error = self.agent_call_errors.get(entry.get("tool_use_id") or "")
        if error is not None:
            return ("interrupted" if error.startswith(INTERRUPTED) else "failed"), error
        if entry.get("ending"):
            return entry["ending"][0], entry["ending"][1]
        if live:
            return "running", None
        return "unknown", "no result was recorded before the session ended"

    def open_subagents(self) -> int:
        """How many subagents have no result, own or inferred: the ones whose status
        the session's liveness decides (``subagent_status``)."""
        return sum(1 for agent_id in self.subagents if self.subagent_status(agent_id, True)[0] == "running")

    def as_json(self, live: bool = True) -> dict[str, Any]:
        """The session's row: ``kapacitor sessions --json`` and the server's
        ``/sessions/{id}.json`` (the README's table), ending with the keys every
        JSON shape of a session shares (``session_keys.shared_keys``). ``live``:
        whether the session is live (``live_status``), which decides the ``status``
        of a subagent without a result (``subagent_status``)."""
        cost = self.cost()
        row = {
            "session_id": self.session_id,
            "agent": self.agent,
            "agent_version": self.agent_version,
            "title": self.title,
            "repository": self.repository,
            "remote_url": self.remote_url,
            "cwd": self.cwd,
            "branch": self.branch,
            "user": self.user,
            "started": self.started,
            "ended": self.ended,
            "duration_seconds": self.duration_seconds(),
            "active_seconds": self.active_seconds(),
            "prompts": self.prompts,
            "commands": self.commands,
            "commands_not_run": self.commands_not_run,
            "tool_calls": sum(self.tool_calls.values()),
            "tool_calls_by_tool": dict(sorted(self.tool_calls.items())),
            "tool_errors": self.tool_errors,
            "denials": self.denials,
            "files_changed": sorted(self.files_changed),
            "tokens": self.tokens(),
            "tokens_main": self.tokens(None),
            "thinking_tokens": self.thinking_tokens(),
            "model_requests": self.model_requests(),
            "model_switches": self.model_switches,
            "subagents": [self.subagent_row(agent_id, live) for agent_id in self.subagents],
            "cost_usd": None if cost is None else float(round(cost, 8)),
            "cost_per_model": {model: None if c is None else float(round(c, 8)) for model, c in self.cost_per_model().items()},
            "unpriced_tokens": self.unpriced_tokens(),
            "price_source": price_source(),
            "client_reported": self.client_reported(),
            "events": self.events,
            "hook_events": self.hook_events,
            "inherited_events": self.inherited_events,
            "continued_from": self.continued_from,
            "continued_in": self.continued_in,
        }
        return row | shared_keys(row)


SUBAGENT_FIGURES = ("started", "ended", "duration_seconds", "tokens", "tokens_total")
"""The keys of ``SessionSummary.subagent_figures``."""

SUBAGENT_DEFAULTS: dict[str, Any] = {
    "agent_type": "",
    "description": None,
    "tool_use_id": None,
    "status": "running",
    "reason": None,
    "result": None,
    "background": False,
    "client_reported": None,
}
"""Every key of a ``subagents`` entry, whichever of its start or completion was
folded (``status`` and ``reason``: ``SessionSummary.subagent_status``)."""
INTERRUPTED = "[Request interrupted by user"
"""How the client's text of a user's interrupt begins (a tool result's, a prompt's)."""


class OwnerLookup(Protocol):
    """Who owns what (``ownership.Owners`` in a fold, ``StoredOwners`` in a read model)."""

    def inherited(self, event: RecordedEvent, session_id: str) -> str | None: ...

    def owner_of(self, key: str) -> str | None: ...


class SessionSummaries:
    """Folds events into ``SessionSummary`` rows keyed by session id. ``owners``
    says which events a session inherited; by default the fold works it out
    itself (it must then see the whole log in order)."""

    def __init__(self, owners: OwnerLookup | None = None) -> None:
        self.sessions: dict[str, SessionSummary] = {}
        self.owners: OwnerLookup = owners if owners is not None else Owners()

    def summary(self, session_id: str) -> SessionSummary:
        found = self.sessions.get(session_id)
        if found is None:
            found = self.sessions[session_id] = SessionSummary(session_id)
        return found

    def apply(self, event: RecordedEvent) -> None:
        session_id = session_of(event)
        if not session_id:
            return
        summary = self.summary(session_id)
        hook = from_hook(event)
        if hook:
            summary.hook_events += 1
        else:
            summary.events += 1
        owner = self.owners.inherited(event, session_id)
        if owner is not None:
            self._inherited(summary, owner)
            return
        data = event.data
        subagent = subagent_of(event)
        stamp = data.get("timestamp") or ""
        # SessionStarted repeats its first record's time, which may be inherited.
        if stamp and event.type != "SessionStarted":
            summary.add_time(stamp, hook)
            if subagent and not hook:
                span = summary.subagent_spans.setdefault(subagent, [stamp, stamp])
                span[:] = min(span[0], stamp), max(span[1], stamp)
        usage = event.metadata.get(USAGE_METADATA_KEY)
        if usage:
            _count_call(summary, usage, subagent)
        if event.type == "SessionTitled":
            self._titled(summary, data)
        handler = _HANDLERS.get(event.type)
        if handler:
            handler(summary, data, subagent)
        if subagent and not hook:
            _subagent_ending(summary, event, subagent)

    def _inherited(self, summary: SessionSummary, owner: str) -> None:
        summary.inherited_events += 1
        if owner not in summary.continued_from:
            summary.continued_from.append(owner)
        origin = self.summary(owner)
        if summary.session_id not in origin.continued_in:
            origin.continued_in.append(summary.session_id)

    def _titled(self, summary: SessionSummary, data: dict[str, Any]) -> None:
        """A title record titles its own session, unless it is a ``summary`` whose
        ``leafUuid`` lies in another session: then it titles that one, below any
        title record of that session's own."""
        title = data.get("title")
        if not title:
            return
        leaf = (data.get("extensions") or {}).get("claude_code", {}).get("leafUuid")
        owner = self.owners.owner_of(leaf_key(leaf)) if data.get("source") == "summary" and isinstance(leaf, str) else None
        target, rank = (self.summary(owner), 1) if owner and owner != summary.session_id else (summary, 2)
        if rank >= target.title_rank:
            target.title, target.title_rank = title, rank


def session_of(event: RecordedEvent) -> str | None:
    """The session an event belongs to: its source's, else its stream's."""
    source = event.metadata.get("source") or {}
    return source.get("session_id") or _session_of_stream(event.stream)


def from_hook(event: RecordedEvent) -> bool:
    """Whether live capture made ``event`` from a hook's payload (``HookReceived``,
    and ``SessionEnded`` at SessionEnd: ``server/ingest.py`` names the hook in
    ``metadata.source``) rather than from a transcript record. An import has none."""
    return "hook" in (event.metadata.get("source") or {})


def subagent_of(event: RecordedEvent) -> str | None:
    """The subagent that produced the event, None for the main agent."""
    return (event.metadata.get("source") or {}).get("agent_id")


def _session_of_stream(stream: str) -> str | None:
    if stream.startswith("AgentSession-"):
        return stream.removeprefix("AgentSession-")
    if stream.startswith("AgentSubsession-"):
        return stream.removeprefix("AgentSubsession-").rsplit("-", 1)[0]
    return None


def call_key(usage: dict[str, Any]) -> tuple[str, str]:
    """What identifies one API call: its (message id, request id)."""
    return (usage.get("message_id", ""), usage.get("request_id", ""))


def merged_call(call: Call | None, usage: dict[str, Any], subagent: str | None) -> Call:
    """The call with one more sighting of its usage: each field keeps its largest
    value; model and subagent are those of the first sighting."""
    facts = {name: usage[name] for name in CALL_FACTS if name in usage}
    if call is None:
        return Call(str(usage.get("model", "")), {name: int(usage.get(name) or 0) for name in TOKEN_FIELDS} | facts, subagent)
    seen = call.usage
    counts = {name: max(seen.get(name, 0), int(usage.get(name) or 0)) for name in TOKEN_FIELDS}
    if "thinking_tokens" in facts:
        facts["thinking_tokens"] = max(int(seen.get("thinking_tokens") or 0), int(facts["thinking_tokens"]))
    return Call(call.model, {k: v for k, v in seen.items() if k in CALL_FACTS} | counts | facts, call.subagent)


def _count_call(summary: SessionSummary, usage: dict[str, Any], subagent: str | None) -> None:
    key = call_key(usage)
    summary.calls[key] = merged_call(summary.calls.get(key), usage, subagent)


def file_path_of(call: dict[str, Any]) -> str | None:
    """The file a tool call means to change, for the tools that change files."""
    path_key = FILE_TOOLS.get(call.get("tool_name", ""))
    arguments = call.get("arguments")
    if path_key and isinstance(arguments, dict) and arguments.get(path_key):
        return str(arguments[path_key])
    return None


def tool_failed(data: dict[str, Any]) -> bool:
    """Whether a ToolResultReceived reports an error."""
    return bool((data.get("extensions") or {}).get("claude_code", {}).get("is_error"))


def _started(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    ext = (data.get("extensions") or {}).get("claude_code", {})
    summary.agent = data.get("agent_name", "")
    summary.user = data.get("user_id", "") or summary.user
    summary.cwd = ext.get("cwd", "")
    summary.branch = ext.get("git_branch", "")
    summary.agent_version = ext.get("version", "")
    summary.repository = ext.get("repository")
    summary.remote_url = ext.get("remote_url")


TITLE_CHARS = 200
"""A title from the first prompt: its first 200 characters (a marker the cut
would split kept whole)."""


def _user_message(summary: SessionSummary, data: dict[str, Any], subagent: str | None) -> None:
    if subagent:
        return
    kind = (data.get("extensions") or {}).get("claude_code", {}).get("kind")
    if kind in ("prompt", "bash_input"):  # typed, queued while a tool ran, or a `!` shell command
        summary.prompts += 1
        if not summary.title and kind == "prompt":
            summary.title = shortened(data.get("content", ""), TITLE_CHARS)
    elif kind == "command":
        summary.commands += 1
        ext = (data.get("extensions") or {}).get("claude_code", {})
        if ext.get("command") == "/model" and ext.get("args"):
            summary.model_switches.append({"timestamp": data.get("timestamp", ""), "to": ext["args"], "source": "/model"})


def _tool_calls(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    for call in data.get("tool_calls", []):
        summary.tool_calls[call.get("tool_name", "")] += 1
        summary._open_calls[call.get("call_id", "")] = call.get("tool_name", "")
        path = file_path_of(call)
        if path:
            summary._pending_files[call.get("call_id", "")] = path


def _tool_result(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    path = summary._pending_files.pop(data.get("call_id", ""), None)
    name = summary._open_calls.pop(data.get("call_id", ""), None)
    if tool_failed(data):
        summary.tool_errors += 1
        if name in AGENT_TOOLS:
            summary.agent_call_errors[data.get("call_id", "")] = str(data.get("result", ""))[:RESULT_CHARS]
        summary._failed_calls[data.get("call_id", "")] = name or data.get("tool_name", "")
    elif path:
        summary.files_changed.add(path)


def _ended(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    summary.end_reason = data.get("reason", "")


def _subagent_started(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    ext = (data.get("extensions") or {}).get("claude_code", {})
    # The completion may have been folded first (a parent transcript is read before its subagents').
    entry = summary.subagents.setdefault(data.get("agent_id", ""), {})
    # A transcript without agent-*.meta.json (2.0.x, inline sidechains) says none of
    # these: keep what the parent's result said.
    for key, value in (("agent_type", data.get("agent_type", "")), ("description", ext.get("description")), ("tool_use_id", ext.get("tool_use_id"))):
        if value or not entry.get(key):
            entry[key] = value


# --- newer clients' facts (2.1.3xx): subagent outcomes, the client's own cost,
# denials, model switches, commands the client did not run ---------------------

RESULT_CHARS = 500
_CLIENT_USAGE = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_input_tokens": "cacheReadInputTokens",
    "cache_creation_input_tokens": "cacheCreationInputTokens",
    "ephemeral_5m_input_tokens": "cacheCreationEphemeral5mInputTokens",
    "ephemeral_1h_input_tokens": "cacheCreationEphemeral1hInputTokens",
    "thinking_tokens": "thinkingTokens",
}
"""Our token field names -> the client's ``cost-state`` ``modelUsage`` names."""


def _subagent_completed(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    ext = (data.get("extensions") or {}).get("claude_code", {})
    entry = summary.subagents.setdefault(data.get("agent_id", ""), {"tool_use_id": ext.get("tool_use_id")})
    entry["tool_use_id"] = entry.get("tool_use_id") or ext.get("tool_use_id")
    outcome = data.get("outcome") or "completed"
    # Why one did not complete: the task notification's summary ("Agent … failed: …").
    reason = None if outcome == "completed" else str(ext.get("notice") or data.get("summary") or "")[:RESULT_CHARS] or None
    entry.update(
        outcome=outcome,
        reason=reason,
        result=str(data.get("summary", ""))[:RESULT_CHARS],
        background=bool(ext.get("background")),
        client_reported=subagent_client_reported(ext),
    )


_OUTPUT = {"AssistantTextGenerated", "AssistantThinkingGenerated", "AssistantToolCallsGenerated"}


def _subagent_ending(summary: SessionSummary, event: RecordedEvent, agent_id: str) -> None:
    """How a subagent's own transcript stops: an API error the client gave up on
    (an assistant record marked an API error: ``error_kind``; a retried one is a
    system record without it) means ``failed``, a user's interrupt
    ``interrupted``; anything the model says after either clears it."""
    data = event.data
    ext = (data.get("extensions") or {}).get("claude_code", {})
    ending = None
    if event.type == "ApiErrorOccurred" and "error_kind" in ext:
        ending = ["failed", str(data.get("error", ""))[:RESULT_CHARS]]
    elif event.type == "InterruptIssued" and data.get("kind") == "user_interrupt":
        ending = ["interrupted", str(data.get("prompt", ""))[:RESULT_CHARS]]
    elif event.type not in _OUTPUT:
        return
    if ending:
        summary.subagents.setdefault(agent_id, {})["ending"] = ending
    elif (summary.subagents.get(agent_id) or {}).get("ending"):
        summary.subagents[agent_id]["ending"] = None


def subagent_client_reported(ext: dict[str, Any]) -> dict[str, Any] | None:
    """What the client said of a finished subagent (the Agent result's
    ``totalDurationMs``/``totalTokens``/``totalToolUseCount``, or a task
    notification's usage), from ``SubagentCompleted``'s extension: its
    ``duration_seconds`` (launch to completion, by the client's clock),
    ``last_request_tokens`` (what the client calls the agent's total tokens: the
    size of its last request, not what it used) and ``tool_uses``; None when it
    said none. Kept as the client's; the pages show ``subagent_figures``."""
    duration = ext.get("duration_ms")
    reported = {
        "duration_seconds": None if duration is None else duration / 1000,
        "last_request_tokens": ext.get("total_tokens"),
        "tool_uses": ext.get("tool_use_count"),
    }
    return reported if any(value is not None for value in reported.values()) else None


def _client_state(summary: SessionSummary, data: dict[str, Any], subagent: str | None) -> None:
    if data.get("kind") != "cost-state" or subagent:
        return
    ext = (data.get("extensions") or {}).get("claude_code", {})
    process = str(ext.get("start_time", ""))
    seen = summary.client_costs.get(process)
    # Totals only grow within one client process; keep the largest seen.
    if seen is None or float(ext.get("total_cost_usd") or 0) >= float(seen.get("total_cost_usd") or 0):
        summary.client_costs[process] = {k: ext.get(k) for k in ("total_cost_usd", "model_usage", "has_unknown_model_cost")}


def _resolved(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    if data.get("outcome") != "denied":
        return
    ext = (data.get("extensions") or {}).get("claude_code", {})
    tool = summary._failed_calls.pop(data.get("request_id", ""), "") or "unknown tool"
    who = ext.get("decided_by") or ("user" if str(ext.get("denial_kind", "")).startswith("user") else "permission rules")
    entry = summary.denials.setdefault(tool, {"count": 0, "by": {}})
    entry["count"] += 1
    entry["by"][who] = entry["by"].get(who, 0) + 1


def _notice(summary: SessionSummary, data: dict[str, Any], subagent: str | None) -> None:
    ext = (data.get("extensions") or {}).get("claude_code", {})
    if ext.get("command_run") is False and not subagent:
        summary.commands += 1
        summary.commands_not_run += 1


def _hook(summary: SessionSummary, data: dict[str, Any], _: str | None) -> None:
    payload = (data.get("extensions") or {}).get("claude_code", {})
    # A /model command is in the transcript already (see _user_message).
    if data.get("hook_event_name") != "PostModelSwitch" or payload.get("source") == "command":
        return
    # In time order, not log order: a hook payload's event may be stored after
    # later ones (capture.shipper passes over one still being masked).
    bisect.insort(
        summary.model_switches,
        {"timestamp": data.get("timestamp", ""), "from": payload.get("from_model"), "to": payload.get("to_model"),
         "source": payload.get("source", "")},
        key=lambda switch: switch["timestamp"],
    )


def summary_state(summary: SessionSummary) -> dict[str, Any]:
    """Everything the fold knows about a session, as JSON-able data, so a
    checkpointed read model can persist it and go on folding after a restart."""
    state = {f.name: getattr(summary, f.name) for f in fields(summary)}
    state["tool_calls"] = dict(summary.tool_calls)
    state["files_changed"] = sorted(summary.files_changed)
    state["calls"] = [[m, r, c.model, c.usage, c.subagent] for (m, r), c in summary.calls.items()]
    return state


def summary_from_state(state: dict[str, Any]) -> SessionSummary:
    """The inverse of ``summary_state``."""
    return SessionSummary(
        **state
        | {
            "tool_calls": Counter(state["tool_calls"]),
            "files_changed": set(state["files_changed"]),
            "calls": {(m, r): Call(model, usage, sub) for m, r, model, usage, sub in state["calls"]},
        }
    )


_HANDLERS = {
    "SessionStarted": _started,
    "SessionEnded": _ended,
    "UserMessageReceived": _user_message,
    "AssistantToolCallsGenerated": _tool_calls,
    "ToolResultReceived": _tool_result,
    "SubagentStarted": _subagent_started,
    "SubagentCompleted": _subagent_completed,
    "ClientStateRecorded": _client_state,
    "InterruptResolved": _resolved,
    "SystemNoticeRecorded": _notice,
    "HookReceived": _hook,
}
