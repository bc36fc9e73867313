"""RFC 9457 problem details, the body of every error under ``/api/`` (``app.web.problems``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from app.outbox.envelopes import ContractModel, sometimes


class FieldError(ContractModel):
    """One invalid field: a JSON pointer into the request body and what is wrong there."""

    # Any character may follow "#/", line breaks included (a refused label key may hold one).
    pointer: Annotated[str, StringConstraints(pattern=r"^#(/[\s\S]*)?$")]
    detail: str


class Problem(ContractModel):
    """RFC 9457 problem details; ``errors`` is present only when fields were invalid."""

    type: str = Field(examples=["about:blank"])
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    errors: list[FieldError] | SkipJsonSchema[None] = sometimes("every invalid field")


class ValidationProblem(Problem):
    """A 422 problem: ``errors`` lists every invalid field of the body."""

    errors: list[FieldError]
