"""The one parser for the days routes take (``since``, ``until``): a query
parameter of type ``Day`` is a real calendar day ``YYYY-MM-DD`` or empty, else
the request is a 422 naming the parameter (``2026-02-30`` as much as
``garbage``), before any route code runs. The rule itself is
``times.calendar_day``. Where ``since`` is a point to look from rather than
the first day of a range (search), it is a ``Since``: a day or a duration
(``7d``), by ``times.since_start``, the same rule as the CLI's ``--since``.
Two days make a range only forwards: ``range_problem`` says when they do not.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from kapacitor import times

Day = Annotated[str, Query(description="YYYY-MM-DD, a calendar day (inclusive)"), AfterValidator(times.calendar_day)]
Since = Annotated[str, Query(description="a day (YYYY-MM-DD, from its start in `tz`, else UTC) or a duration back from now (12h, 7d, 2w)"),
                  AfterValidator(times.since_text)]


def range_problem(since: str, until: str) -> str:
    """Why the days ``since`` to ``until`` (``YYYY-MM-DD``, inclusive; either empty:
    open) are no range, '' when they are one: the one rule of the timeline, the
    overview pages and their JSON twins (a 422 there, said beside the form on a page)."""
    if since and until and since > until:
        return f"the range starts ({since}) after it ends ({until})"
    return ""
