"""The JSON resources the bridge shows (watch, target, delivery, event, problem, readiness): one
pydantic model per shape, used both to serialize answers and to describe them in OpenAPI."""
