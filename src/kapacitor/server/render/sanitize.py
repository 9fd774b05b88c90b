"""The one place HTML is cleaned: nh3 (ammonia) with an explicit allow-list.

Markdown and highlighted code are turned into HTML by libraries from untrusted
transcript text; whatever they emit passes through ``clean`` before it reaches
a page. Only structural and formatting tags survive, attributes are limited to
``class`` (for Pygments' token classes) and a link's ``href``/``title``, and
links may only use http, https and mailto. Scripts, styles, event handlers,
iframes, forms and images (a remote image is a tracking pixel) are dropped.
"""

from __future__ import annotations

from typing import Any

import nh3
from markupsafe import Markup, escape

TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "summary",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "*": {"class"},
    "a": {"href", "title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}


def clean(html: str) -> Markup:
    """``html`` with everything outside the allow-list removed, marked safe."""
    return Markup(
        nh3.clean(
            html,
            tags=TAGS,
            clean_content_tags=DROP_WITH_CONTENT,
            attributes=ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )
    )


def html(template: str, *args: Any) -> Markup:
    """Our own markup: ``template`` (a trusted literal with ``{}`` fields) filled
    with ``args``, each escaped unless it is already ``Markup`` (numbers are kept
    for format specs such as ``{:,}``). Like ``Markup.format``, several times faster."""
    return Markup(template.format(*(a if isinstance(a, int | float) else escape(a) for a in args)))
