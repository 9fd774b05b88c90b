"""Who may hold a live stream (``/events``) on a team server, what it tells them and
how many each may hold: the real ``kapacitor serve --auth`` on loopback, its users
and sessions made as in ``test_access``. An anonymous visitor follows only the page
of a public session, hears only of it and never the log's position; anonymous
visitors, or one user, cannot take the places of everyone else."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import httpx
from playwright.sync_api import expect

from capture_helpers import WIDGETS, wait_for
from kapacitor.server.live import MAX_ANONYMOUS, MAX_PER_USER
from test_access import BOB_SESSION, follow_events, team  # noqa: F401  (fixture)


class Stream:
    """One ``GET`` of a live stream held open on its own socket (as a browser tab
    holds one), so a test can open dozens without a thread each."""

    def __init__(self, url: str, path: str, token: str | None = None):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed the stream before answering"
            self.head += chunk
        self.status = int(self.head.split(b" ", 2)[1])
        if self.status == 200:  # open once it said hello
            while b"event: hello" not in self.head:
                self.head += self.sock.recv(4096)
        else:  # refused: the whole answer (its body says why)
            while not self.head.endswith(b"}"):
                self.head += self.sock.recv(4096)

    def close(self) -> None:
        self.sock.close()


def answer(client: httpx.Client, path: str) -> tuple[int, str]:
    """The status and body of a stream that is refused (it answers at once)."""
    with client.stream("GET", path, headers={"Accept": "text/event-stream"}) as stream:
        if stream.status_code == 200:
            return 200, ""
        return stream.status_code, stream.read().decode()


def test_an_anonymous_visitor_follows_only_a_public_sessions_page(team):
    anonymous, alice, bob = team.client(), team.client("alice"), team.client("bob")
    assert answer(anonymous, "/events") == (401, '{"detail":"sign in required"}')  # the whole stream needs sign-in
    hidden, missing = answer(anonymous, f"/events?session={WIDGETS}"), answer(anonymous, "/events?session=no-such")
    assert hidden[0] == missing[0] == 404 and hidden[1].replace(WIDGETS, "") == missing[1].replace("no-such", "")
    assert answer(bob, f"/events?session={WIDGETS}")[0] == 404  # alice's, private

    for user, sid in (("alice", WIDGETS), ("bob", BOB_SESSION)):
        assert team.client(user).put(f"/api/sessions/{sid}/visibility", json={"visibility": "public"}).status_code == 200
    page = anonymous.get(f"/sessions/{WIDGETS}", headers={"Accept": "text/html"}).text
    assert f'data-events="/events?session={WIDGETS}"' in page  # what its page listens to
    assert 'data-events="/events"' in bob.get(f"/sessions/{WIDGETS}", headers={"Accept": "text/html"}).text

    seen = {"anonymous": [], "bob": []}
    stop, ready = threading.Event(), {name: threading.Event() for name in seen}
    for name, client, path in (("anonymous", anonymous, f"/events?session={WIDGETS}"), ("bob", bob, "/events")):
        threading.Thread(target=follow_events, args=(client, seen[name], ready[name], stop, path), daemon=True).start()
    assert all(event.wait(10) for event in ready.values())
    wait_for(lambda: all("event: hello" in lines for lines in seen.values()))
    assert bob.post(f"/api/sessions/{BOB_SESSION}/comments", json={"text": "public thoughts"}).status_code == 201
    wait_for(lambda: any(BOB_SESSION in line for line in seen["bob"]))
    assert alice.post(f"/api/sessions/{WIDGETS}/comments", json={"text": "hers"}).status_code == 201
    wait_for(lambda: any(WIDGETS in line for line in seen["anonymous"]))
    wait_for(lambda: any(WIDGETS in line for line in seen["bob"]))
    seen["anonymous"].append("(private from here)")
    assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "private"}).status_code == 200
    wait_for(lambda: any(WIDGETS in line for line in seen["anonymous"][seen["anonymous"].index("(private from here)"):]))
    stop.set()  # told of it going private, the page re-reads its parts: gone (404)
    assert not any(BOB_SESSION in line for line in seen["anonymous"])  # public too, but not the page it follows
    changes = [json.loads(line.removeprefix("data: ")) for line in seen["anonymous"] if line.startswith('data: {"')]
    assert changes and all(c["sessions"] in ([], [WIDGETS]) and c["comments"] in ([], [WIDGETS]) for c in changes)
    assert all(c["repositories"] == [] for c in changes)
    for lines in seen.values():  # nobody is told the log's position: it counts everyone's events
        assert "data: {}" in lines and not any("position" in line for line in lines), lines


def test_nobody_can_take_everyone_elses_live_streams(team):
    """Anonymous visitors share a few places of their own; one user holds at most
    ``MAX_PER_USER``; either full, the others still get theirs."""
    url, tokens = team.server.url, team.tokens
    assert team.client("alice").put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "public"}).status_code == 200
    public = f"/events?session={WIDGETS}"
    streams = [Stream(url, public) for _ in range(MAX_ANONYMOUS)]
    try:
        assert [s.status for s in streams] == [200] * MAX_ANONYMOUS
        refused = Stream(url, public)
        streams.append(refused)
        assert refused.status == 503 and b"anonymous live streams are open already" in refused.head
        bobs = [Stream(url, "/events", tokens["bob"]) for _ in range(MAX_PER_USER)]
        streams += bobs
        assert [s.status for s in bobs] == [200] * MAX_PER_USER  # anonymous visitors took none of the team's places
        one_more = Stream(url, "/events", tokens["bob"])
        streams.append(one_more)
        assert one_more.status == 503 and b"live streams of bob are open already" in one_more.head
        alice = Stream(url, "/events", tokens["alice"])
        streams.append(alice)
        assert alice.status == 200
        bobs[0].close()

        def bob_again() -> bool:
            streams.append(Stream(url, "/events", tokens["bob"]))
            return streams[-1].status == 200

        wait_for(bob_again, timeout=10)  # a closed tab frees its place
    finally:
        for stream in streams:
            stream.close()
    time.sleep(0.5)


def test_a_public_sessions_page_updates_live_for_an_anonymous_visitor(team, page):
    """In real Chromium: the page follows its session's stream (the indicator says
    so) and shows a new comment without a reload; a page without a stream of its
    own (the sign-in page) opens none, and nothing is refused on the way."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    alice = team.client("alice")
    assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "public"}).status_code == 200
    page.goto(f"{team.server.url}/sessions/{WIDGETS}")
    expect(page.locator("#live-indicator")).to_have_class(re.compile("connected"))
    expect(page.locator("#comment-list")).to_be_attached()
    assert alice.post(f"/api/sessions/{WIDGETS}/comments", json={"text": "seen live by anyone"}).status_code == 201
    expect(page.locator("#comment-list")).to_contain_text("seen live by anyone")
    page.goto(f"{team.server.url}/sessions/no-such-session")  # anonymous: sent to sign in, no stream opened
    expect(page.locator("#live-indicator")).to_have_count(0)
    assert not errors, errors
