"""The ``/api/v1/endpoints`` paths of the OpenAPI document (``openapi_paths.paths`` includes them).

Summaries are the views' docstrings (``app.api.endpoints``); request bodies are the models of
``app.endpoints.validation`` and answers those of ``app.resources.endpoints``, both under
``components/schemas`` by class name (``EndpointCreate`` is the union of the three create bodies).
"""

from __future__ import annotations

from app.api.openapi_paths import API_ERRORS, Spec, json_response, operation, ref

TAG = "endpoints"
#: What a body-taking operation can answer besides its own errors (the body is parsed first).
BODY_ERRORS = {400: "Malformed JSON.", 413: "", 415: "", 422: ""}
NOT_FOUND = {404: "No endpoint has this id or name."}


def endpoint_paths() -> Spec:
    """The path items of ``/api/v1/endpoints`` and ``/api/v1/endpoints/{ref}[/...]``."""
    from app.api import endpoints

    created = json_response(
        "Endpoint", "Created; a generated webhook secret is in `secret`, shown only here."
    )
    created["headers"] = {"Location": ref("headers", "Location")}
    one = json_response("Endpoint", "The endpoint with its health.")
    by_ref = {**API_ERRORS, **NOT_FOUND}
    path = {"parameters": [ref("parameters", "EndpointRef")]}
    return {
        "/api/v1/endpoints": {
            "post": operation(
                endpoints.create_endpoint,
                {"201": created},
                tag=TAG,
                errors={**API_ERRORS, **BODY_ERRORS, 409: "An endpoint has this name already."},
                body=ref("schemas", "EndpointCreate"),
            ),
            "get": operation(
                endpoints.list_endpoints,
                {"200": json_response("EndpointList", "Every endpoint, by name.")},
                tag=TAG,
                errors=dict(API_ERRORS),
            ),
        },
        "/api/v1/endpoints/{ref}": {
            **path,
            "get": operation(endpoints.get_endpoint, {"200": one}, tag=TAG, errors=by_ref),
            "patch": operation(
                endpoints.change_endpoint,
                {"200": json_response("Endpoint", "The endpoint, changed.")},
                tag=TAG,
                errors={**by_ref, **BODY_ERRORS},
                body=ref("schemas", "EndpointChange"),
            ),
            "delete": operation(
                endpoints.delete_endpoint,
                {"204": {"description": "Deleted."}},
                tag=TAG,
                errors={**by_ref, 409: "A watching watch uses this endpoint."},
            ),
        },
        "/api/v1/endpoints/{ref}/rotate-secret": {
            **path,
            "post": _optional_body(
                operation(
                    endpoints.rotate_secret,
                    {"200": json_response("Endpoint", "The endpoint, with its new `secret`.")},
                    tag=TAG,
                    errors={**by_ref, **BODY_ERRORS, 409: "The endpoint has no signing secret."},
                    body=ref("schemas", "RotateSecret"),
                )
            ),
        },
        "/api/v1/endpoints/{ref}/replay": {
            **path,
            "post": _optional_body(
                operation(
                    endpoints.replay,
                    {"202": json_response("Queued", "Accepted: this many deliveries are due.")},
                    tag=TAG,
                    errors={**by_ref, **BODY_ERRORS},
                    body=ref("schemas", "Replay"),
                )
            ),
        },
    }


def _optional_body(spec: Spec) -> Spec:
    """``spec`` with its body optional: without one, every field takes its default."""
    spec["requestBody"]["required"] = False
    return spec
