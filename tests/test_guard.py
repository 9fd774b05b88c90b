"""A server without --auth is this machine's only, on the real server over loopback:
foreign Host headers and cross-origin writes are refused, ingest takes JSON only,
every answer has the security headers, and no page runs an inline script."""

from __future__ import annotations

import re
import subprocess

import httpx

from capture_helpers import KAPACITOR, WIDGETS, LiveSession, run_hook, wait_for

INGEST = f"/api/ingest/sessions/{WIDGETS}/batches"


def test_foreign_hosts_and_cross_origin_writes_are_refused(tmp_path, live_server):
    live = LiveSession(tmp_path / "projects")
    live.write_all()
    assert run_hook("Stop", live.payload("Stop")).returncode == 0
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        wait_for(lambda: client.get(f"/sessions/{WIDGETS}.json").status_code == 200)
        rebound = client.get(f"/sessions/{WIDGETS}.json", headers={"Host": f"attacker.example:{live_server.port}"})
        assert rebound.status_code == 403 and "not this machine" in rebound.text and WIDGETS not in rebound.text
        for host in ("localhost", f"localhost:{live_server.port}", f"[::1]:{live_server.port}"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200

        url = f"/api/sessions/{WIDGETS}/visibility"
        evil = {"Origin": "http://attacker.example"}
        assert client.put(url, json={"visibility": "org"}, headers=evil).status_code == 403
        assert client.put(url, json={"visibility": "org"}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        same = {"Origin": live_server.url}
        assert client.put(url, json={"visibility": "org"}, headers=same).json()["visibility"] == "org"

        head = client.get("/healthz").json()["head"]
        batch = '{"v": 1, "transcripts": []}'
        form = client.post(INGEST, content=batch, headers={"Content-Type": "text/plain"})  # what a cross-site form can send
        assert form.status_code == 415
        assert client.post(INGEST, content=batch, headers={"Content-Type": "application/json", **evil}).status_code == 403
        assert client.post(INGEST, content=batch, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200
        assert client.get("/healthz").json()["head"] == head


def test_every_answer_has_the_security_headers_and_pages_have_no_inline_script(tmp_path, live_server):
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        for path in ("/", "/sessions.json", "/docs", "/redoc", "/static/app.css", "/no/such/page"):
            answer = client.get(path, headers={"Accept": "text/html"})
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
            assert answer.headers["x-content-type-options"] == "nosniff"
            scripts = re.findall(r"<script\b[^>]*>", answer.text)
            assert all("src=" in tag for tag in scripts), (path, scripts)
        docs = client.get("/docs").text
        assert "cdn" not in docs.lower() and "/docs-assets/swagger-ui-bundle.js" in docs
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/docs-assets/redoc.standalone.js").status_code == 200


def test_serve_refuses_another_host_without_auth_in_one_line(tmp_path):
    done = subprocess.run([KAPACITOR, "--store", f"sqlite://{tmp_path / 'x.db'}", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "--auth" in done.stderr
