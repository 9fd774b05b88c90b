"""Chat slice time: one 200-item slice of a session's chat (``GET
/sessions/{id}/chat?start=N``) at 200 and at 20,000 tool calls, at the start,
the middle and the end of the chat, on the real app in-process (httpx over
ASGI) and a real SQLite store. The 200-call session is the baseline, measured in
the same run; the ratio says how the slice cost grows with the session.

The first request of a session builds its chat (every event read); the ones
after it, while no event arrives, slice what was built. Then the trace page of
each session: its size and time, first and again (a large tree renders its
first nodes, the rest on demand; the tree is kept with the items). Then the
live case: a tool call and its result are appended to the session, and the
first chat slice (its end) and the first trace page after the append are timed
(median of ``--appends`` rounds): only the new events are read and folded in
(``chat.ChatModel``, ``trace.TraceModel``), so these should not grow with the
session either.

Then the first read after a server start (a fresh app on the same store: no chat
kept), three ways, median of ``--starts`` starts: "before" (no warm-up, the
chat and trace built with the cycle collector running, as before
``cycles.young_collections_only``),
"cold" (no warm-up) and "warmed" (the start's background warm-up,
``chat_warmup``, done before the request: sessions under ``WARM_FROM`` events,
as the 200-call one, are left to their first read).

    python bench/chat_slices.py [--calls 200,20000] [--repeat 3] [--starts 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from kapacitor.events import NewEvent
from kapacitor.server import chat, trace
from kapacitor.server.app import create_app
from kapacitor.store import open_store


def session_events(session_id: str, calls: int) -> list[NewEvent]:
    """A prompt, then ``calls`` turns of one Bash call and its result, then a reply."""
    ts = "2026-05-01T10:00:00.000Z"
    ext = {"claude_code": {"kind": "prompt"}}
    events = [NewEvent(f"{session_id}-p", "UserMessageReceived", {"timestamp": ts, "content": "run the tests", "extensions": ext})]
    for i in range(calls):
        call = f"toolu_{session_id}_{i}"
        events.append(NewEvent(f"{session_id}-c{i}", "AssistantToolCallsGenerated", {
            "timestamp": ts, "message_id": f"msg_{i}", "author_name": "claude-opus-4-8",
            "tool_calls": [{"call_id": call, "tool_name": "Bash", "arguments": {"command": f"pytest tests/test_{i}.py"}}]},
            {"raw": "{" + "x" * 400 + "}"}))
        events.append(NewEvent(f"{session_id}-r{i}", "ToolResultReceived", {
            "timestamp": ts, "call_id": call, "result": f"test_{i} passed\n" * 5, "is_error": False}, {"raw": "{" + "y" * 600 + "}"}))
    events.append(NewEvent(f"{session_id}-t", "AssistantTextGenerated", {"timestamp": ts, "content": "All green.", "message_id": "msg_end"}))
    return events


def live_events(session_id: str, i: int) -> list[NewEvent]:
    """One more turn, as live capture appends it: a Bash call and its result."""
    return session_events(session_id, i + 1)[-3:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="200,20000", help="tool calls per session, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="timed requests per slice (median)")
    parser.add_argument("--appends", type=int, default=5, help="append rounds for the first-request-after-append times (median)")
    parser.add_argument("--starts", type=int, default=3, help="server starts for the first-read-after-a-start times (median)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.calls.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite://{Path(tmp) / 'events.db'}"
        store = open_store(url)
        for n in sizes:
            store.append(f"AgentSession-bench-{n}", session_events(f"bench-{n}", n))
        store.append("AgentSession-bench-tiny", session_events("bench-tiny", 1))  # a fresh app's first pages, untimed
        store.close()
        app = create_app(url, run_projections=False)
        app.state.runner.catch_up()
        rows = asyncio.run(measure(app, sizes, args.repeat, args.appends))
        app.state.runner.close()
        app.state.store.close()
        starts = {way: [first_reads(url, sizes, way) for _ in range(args.starts)] for way in ("before", "cold", "warmed")}
    base = rows[0]
    print(f"{'tool calls':>10} {'items':>7} {'first slice s':>14} {'start s':>8} {'middle s':>9} {'end s':>7}"
          f" {'end / baseline end':>19} {'trace page MB':>14} {'trace page s':>13} {'again s':>8}")
    for r in rows:
        print(f"{r['calls']:>10,} {r['items']:>7,} {r['first']:14.3f} {r['start']:8.3f} {r['middle']:9.3f} {r['end']:7.3f}"
              f" {r['end'] / base['end']:19.1f} {r['trace_mb']:14.2f} {r['trace_s']:13.2f} {r['trace_again_s']:8.2f}")
    print(f"\nafter an append (median of {args.appends}):")
    print(f"{'tool calls':>10} {'slice s':>8} {'/ baseline':>11} {'trace page s':>13} {'/ baseline':>11} {'rebuilds':>9}")
    for r in rows:
        print(f"{r['calls']:>10,} {r['append_slice']:8.3f} {r['append_slice'] / base['append_slice']:11.1f}"
              f" {r['append_trace']:13.3f} {r['append_trace'] / base['append_trace']:11.1f} {r['rebuilds']:>9}")
    print(f"\nfirst read after a server start (median of {args.starts} starts; load average {os.getloadavg()[0]:.1f}):")
    print(f"{'tool calls':>10} {'start':>7} {'warm-up s':>10} {'chat slice s':>13} {'trace page s':>13}")
    for n in sizes:
        for way, runs in starts.items():
            warmup, slice_, trace = (statistics.median(r[n][k] for r in runs) for k in range(3))
            print(f"{n:>10,} {way:>7} {warmup:10.2f} {slice_:13.3f} {trace:13.3f}")


def first_reads(url: str, sizes: list[int], way: str) -> dict[int, tuple[float, float, float]]:
    """A fresh app on the store (as after a restart), started ``way``; per size:
    (the warm-up's wall seconds, the first chat slice's, then the first trace page's)."""
    app = create_app(url, run_projections=False)
    warmup = 0.0
    if way == "warmed":
        started = time.perf_counter()
        app.state.chat_warmer.start()  # what the server's start does
        app.state.chat_warmer.join()
        warmup = time.perf_counter() - started
    with contextlib.ExitStack() as stack:
        if way == "before":
            stack.enter_context(_collector_running())
        times = asyncio.run(_first_reads(app, sizes))
    app.state.store.close()
    app.state.runner.close()
    return {n: (warmup, *times[n]) for n in sizes}


@contextlib.contextmanager
def _collector_running():  # noqa: ANN202
    """The full build as it was before the cycle collector was held off during it."""
    held = chat.young_collections_only
    chat.young_collections_only = trace.young_collections_only = contextlib.nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        chat.young_collections_only = trace.young_collections_only = held


async def _first_reads(app, sizes: list[int]) -> dict[int, tuple[float, float]]:  # noqa: ANN001
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for path in ("/sessions/bench-tiny/chat?start=0&limit=200", "/sessions/bench-tiny/trace"):
            await client.get(path)  # what any first request pays (templates, connections), not the session's build
        for n in sizes:
            spent = []
            for path in (f"/sessions/bench-{n}/chat?start=0&limit=200", f"/sessions/bench-{n}/trace"):
                started = time.perf_counter()
                assert (await client.get(path)).status_code == 200
                spent.append(time.perf_counter() - started)
            out[n] = (spent[0], spent[1])
    return out


async def measure(app, sizes: list[int], repeat: int, appends: int) -> list[dict]:  # noqa: ANN001
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:

        async def timed(path: str) -> float:
            started = time.perf_counter()
            response = await client.get(path)
            assert response.status_code == 200, response.text
            return time.perf_counter() - started

        for n in sizes:
            sid, items = f"bench-{n}", n + 2
            first = await timed(f"/sessions/{sid}/chat?start=0&limit=200")
            row = {"calls": n, "items": items, "first": first}
            for name, start in (("start", 0), ("middle", items // 2), ("end", max(0, items - 200))):
                row[name] = statistics.median([await timed(f"/sessions/{sid}/chat?start={start}&limit=200") for _ in range(repeat)])
            started = time.perf_counter()
            trace = await client.get(f"/sessions/{sid}/trace")
            row["trace_s"], row["trace_mb"] = time.perf_counter() - started, len(trace.content) / 1e6
            row["trace_again_s"] = await timed(f"/sessions/{sid}/trace")
            slices, traces = [], []
            for k in range(appends):
                app.state.store.append(f"AgentSession-{sid}", live_events(sid, n + k))
                items += 2
                slices.append(await timed(f"/sessions/{sid}/chat?start={items - 50}&limit=200"))
                traces.append(await timed(f"/sessions/{sid}/trace"))
            row["append_slice"], row["append_trace"] = statistics.median(slices), statistics.median(traces)
            row["rebuilds"] = app.state.chat_cache._entries[sid].chat.rebuilds - 1
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
