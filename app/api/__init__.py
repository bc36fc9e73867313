"""The JSON API blueprint (``/api/v1``): bearer tokens, pydantic-validated bodies, problem+json errors."""
