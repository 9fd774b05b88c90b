"""The one parser for the days routes take (``since``, ``until``): a query
parameter of type ``Day`` is a real calendar day ``YYYY-MM-DD`` or empty, else
the request is a 422 naming the parameter (``2026-02-30`` as much as
``garbage``), before any route code runs. The rule itself is
``times.calendar_day``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from kapacitor import times

Day = Annotated[str, Query(description="YYYY-MM-DD, a calendar day (inclusive)"), AfterValidator(times.calendar_day)]
