"""The API docs' ReDoc bundle, served without its call home.

fastapi-offline ships ReDoc unmodified, and its sidebar footer shows Redocly's logo
from ``https://cdn.redoc.ly``: an image the CSP (``img-src 'self' data:``) blocks,
so every visit to ``/redoc`` logged a violation. ``redoc_bundle`` serves the same
file with that image left out (the "API docs by Redocly" link stays); when a newer
bundle spells it differently the file is served as shipped.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import fastapi_offline

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI and ReDoc, shipped by the fastapi-offline package: /docs works offline."""

REDOCLY_LOGO = re.compile(r'\w+\?\w+\.createElement\("img",\{alt:"redocly logo",[^}]*\}\):null')
"""The logo component's image (rendered once mounted, dropped on a load error)."""


@cache
def redoc_bundle() -> bytes:
    """``redoc.standalone.js`` without the remote logo image (UTF-8 JavaScript)."""
    return REDOCLY_LOGO.sub("null", (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")).encode()
