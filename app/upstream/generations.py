"""The three generations of Media Intelligence's "get analysis status" endpoint and their order."""

from __future__ import annotations

import re
from urllib.parse import quote

from app.vocabulary import ApiGeneration

#: A segment of only these characters is its own encoding (``quote`` would return it unchanged): the
#: common case, checked in C instead of quoting in Python on every request.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")

_PATHS = {
    ApiGeneration.VIDEO_ASSETS: "video-assets/{asset}/analyze-status",
    ApiGeneration.ASSETS: "assets/{asset}/analyze-status",
    ApiGeneration.INDEX: "assets/{asset}/index/status",
}

_SUCCESSOR = {
    ApiGeneration.VIDEO_ASSETS: ApiGeneration.ASSETS,
    ApiGeneration.ASSETS: ApiGeneration.INDEX,
    ApiGeneration.INDEX: None,
}


def status_path(generation: ApiGeneration, workspace: str, project_id: str, asset_id: str) -> str:
    """The request path (no host, no query) of the status endpoint for one asset."""
    asset_part = _PATHS[generation].format(asset=_segment(asset_id))
    return f"/api/v1/workspaces/{_segment(workspace)}/projects/{_segment(project_id)}/{asset_part}"


def _segment(value: str) -> str:
    """``value`` as one path segment. Registration refuses ``.`` and ``..``, but rows written before
    it did may hold them: encoded, they can never climb the path (the upstream answers 404)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    if _UNRESERVED.fullmatch(value):
        return value
    return quote(value, safe="")


def successor(generation: ApiGeneration) -> ApiGeneration | None:
    """The generation to fall forward to when ``generation`` answers 404/410, or None for the last.

    Assumes an asset keeps its id across generations (the NCP docs do not say otherwise).
    """
    return _SUCCESSOR[generation]
