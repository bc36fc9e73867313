"""The JSON resources the bridge shows (watch, target, delivery, event, problem, readiness): one
pydantic model per shape, used both to build every answer and to describe it in OpenAPI.

Each module pairs its models with the functions that build them from rows; a view, the CLI or the
dashboard calls a builder and writes ``.as_json()`` (``app.outbox.envelopes.ContractModel``).
"""
