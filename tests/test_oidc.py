"""OIDC sign-in through Authlib against our own fake provider over HTTP on
loopback, with the real server (--auth) and real Chromium."""

from __future__ import annotations

import subprocess

import httpx
from playwright.sync_api import expect

from capture_helpers import KAPACITOR, Server
from fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider


def test_sign_in_with_the_provider_maps_the_verified_email_to_a_user(tmp_path, page):
    db = tmp_path / "team.db"
    for args in (["alice", "--email", "Alice@Example.com"], ["bob"]):
        subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", "users", "add", *args], check=True, capture_output=True)
    with FakeOidcProvider("alice@example.com") as provider:
        server = Server(db, None, "--auth", KAPACITOR_OIDC_ISSUER=provider.issuer, KAPACITOR_OIDC_CLIENT_ID=CLIENT_ID,
                        KAPACITOR_OIDC_CLIENT_SECRET=CLIENT_SECRET).start()
        try:
            page.goto(f"{server.url}/sessions.json")
            page.goto(f"{server.url}/")
            expect(page).to_have_url(f"{server.url}/login?next=/")
            page.click("#oidc-login")
            expect(page).to_have_url(f"{server.url}/")
            expect(page.locator(".whoami")).to_have_text("alice")
            cookies = {c["name"]: c["value"] for c in page.context.cookies(server.url)}
            with httpx.Client(base_url=server.url, cookies=cookies) as browser_like:
                assert browser_like.get("/sessions.json").status_code == 200

            provider.email = "mallory@example.com"  # the provider knows them; Kapacitor does not
            with httpx.Client(base_url=server.url, follow_redirects=True) as client:
                refused = client.get("/login/oidc")
                assert refused.status_code == 403 and "No Kapacitor user has the email mallory@example.com" in refused.text
                assert client.get("/sessions.json").status_code == 401
            provider.email, provider.email_verified = "alice@example.com", False
            with httpx.Client(base_url=server.url, follow_redirects=True) as client:
                assert client.get("/login/oidc").status_code == 403  # an unverified email proves nothing
        finally:
            server.stop()


def test_a_wrong_client_secret_is_a_failed_sign_in_not_a_crash(tmp_path):
    db = tmp_path / "team.db"
    subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", "users", "add", "alice", "--email", "alice@example.com"], check=True, capture_output=True)
    with FakeOidcProvider() as provider:
        server = Server(db, None, "--auth", KAPACITOR_OIDC_ISSUER=provider.issuer, KAPACITOR_OIDC_CLIENT_ID=CLIENT_ID,
                        KAPACITOR_OIDC_CLIENT_SECRET="wrong").start()
        try:
            with httpx.Client(base_url=server.url, follow_redirects=True) as client:
                answer = client.get("/login/oidc")
                assert answer.status_code == 401 and "Sign-in failed" in answer.text
        finally:
            server.stop()
