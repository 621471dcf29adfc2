"""The ``cursor`` and ``limit`` arguments every list tool takes (see ``services.paging``).

The range of ``limit`` is checked by the service, so its error names the field, the rule and
the value like every other argument error.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mission_server.services.paging import CURSOR_DOC, LIMIT_DOC

CursorArg = Annotated[str | None, Field(description=CURSOR_DOC)]
LimitArg = Annotated[int | None, Field(strict=True, description=LIMIT_DOC)]
