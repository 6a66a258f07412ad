"""Paging parameters shared by the list routes.

An offset is bounded by what the database can hold in a BIGINT: a larger one is a 400
problem, never an overflow inside the driver (a 500).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 2**63 - 1

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
