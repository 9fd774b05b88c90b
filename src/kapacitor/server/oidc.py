"""Sign-in through an OpenID Connect provider (any: Google, Microsoft Entra, Okta,
Keycloak, Dex in front of GitHub, ...), by Authlib.

``/login/oidc`` sends the browser to the provider; the provider sends it back to
``/login/oidc/callback`` with a code, which Authlib trades for tokens, checking
the ID token's signature (the provider's published keys), issuer, audience,
expiry and nonce. The user is the Kapacitor user whose email is the token's
verified ``email``: the provider says who someone is, ``kapacitor users`` says
who may sign in, so an unknown email is refused. Configured by
``KAPACITOR_OIDC_ISSUER``, ``KAPACITOR_OIDC_CLIENT_ID`` and
``KAPACITOR_OIDC_CLIENT_SECRET`` (or ``serve --oidc-issuer/--oidc-client-id``;
the secret only from the environment, never a command line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from kapacitor.access import accounts
from kapacitor.server.access import conn, local_path, login_page, not_found, sign_in

router = APIRouter()


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str

    @classmethod
    def from_env(cls, issuer: str = "", client_id: str = "") -> OidcSettings | None:
        """The settings from the arguments or the environment; None when no issuer is set."""
        issuer = issuer or os.environ.get("KAPACITOR_OIDC_ISSUER", "")
        if not issuer:
            return None
        return cls(issuer.rstrip("/"), client_id or os.environ.get("KAPACITOR_OIDC_CLIENT_ID", ""),
                   os.environ.get("KAPACITOR_OIDC_CLIENT_SECRET", ""))


def install(app: FastAPI, settings: OidcSettings) -> None:
    """Register the provider (its metadata is fetched on first sign-in)."""
    oauth = OAuth()
    oauth.register(
        "oidc",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile"},
    )
    app.state.oidc = oauth.oidc  # type: ignore[attr-defined]


@router.get("/login/oidc", include_in_schema=False)
async def oidc_login(request: Request, next: str = "/") -> Response:
    client = request.app.state.oidc
    if client is None:
        raise not_found("sign-in provider (set KAPACITOR_OIDC_ISSUER)")
    request.session["oidc_next"] = local_path(next)
    public = request.app.state.public_url
    callback = f"{public.rstrip('/')}/login/oidc/callback" if public else str(request.url_for("oidc_callback"))
    return await client.authorize_redirect(request, callback)  # type: ignore[no-any-return]


@router.get("/login/oidc/callback", name="oidc_callback", include_in_schema=False)
async def oidc_callback(request: Request) -> Response:
    client = request.app.state.oidc
    if client is None:
        raise not_found("sign-in provider")
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        return login_page(request, f"Sign-in failed: {exc.description or exc.error}", 401)
    info = token.get("userinfo") or {}
    email = info.get("email") if info.get("email_verified", True) else None
    user = accounts.user_by_email(conn(request), email) if email else None
    if user is None:
        shown = email or "no verified email"
        return login_page(request, f"No Kapacitor user has the email {shown}: ask an admin (kapacitor users add NAME --email EMAIL).", 403)
    target = request.session.get("oidc_next", "/")
    sign_in(request, user)
    return RedirectResponse(local_path(target), status_code=303)
