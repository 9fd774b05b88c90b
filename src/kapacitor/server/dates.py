"""The one parser for the days routes take (``since``, ``until``): a query
parameter of type ``Day`` is a real calendar day ``YYYY-MM-DD`` or empty, else
the request is a 422 naming the parameter (``2026-02-30`` as much as
``garbage``), before any route code runs. The rule itself is
``times.calendar_day``. Where ``since`` is a point to look from rather than
the first day of a range (search), it is a ``Since``: a day or a duration
(``7d``), by ``times.since_start``, the same rule as the CLI's ``--since``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from kapacitor import times

Day = Annotated[str, Query(description="YYYY-MM-DD, a calendar day (inclusive)"), AfterValidator(times.calendar_day)]
Since = Annotated[str, Query(description="a day (YYYY-MM-DD, from its start in `tz`, else UTC) or a duration back from now (12h, 7d, 2w)"),
                  AfterValidator(times.since_text)]
