"""The three generations of Media Intelligence's "get analysis status" endpoint and their order."""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import quote


class Generation(StrEnum):
    """A status endpoint generation; the value is the name used in the API and the configuration."""

    VIDEO_ASSETS = "video-assets"  # deprecated, to be turned off January 2027
    ASSETS = "assets"  # deprecated, to be removed January 2027
    INDEX = "index"  # current


_PATHS = {
    Generation.VIDEO_ASSETS: "video-assets/{asset}/analyze-status",
    Generation.ASSETS: "assets/{asset}/analyze-status",
    Generation.INDEX: "assets/{asset}/index/status",
}

_SUCCESSOR = {
    Generation.VIDEO_ASSETS: Generation.ASSETS,
    Generation.ASSETS: Generation.INDEX,
    Generation.INDEX: None,
}


def status_path(generation: Generation, workspace: str, project_id: str, asset_id: str) -> str:
    """The request path (no host, no query) of the status endpoint for one asset."""
    asset_part = _PATHS[generation].format(asset=_segment(asset_id))
    return f"/api/v1/workspaces/{_segment(workspace)}/projects/{_segment(project_id)}/{asset_part}"


def _segment(value: str) -> str:
    """``value`` as one path segment. Registration refuses ``.`` and ``..``, but rows written before
    it did may hold them: encoded, they can never climb the path (the upstream answers 404)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def successor(generation: Generation) -> Generation | None:
    """The generation to fall forward to when ``generation`` answers 404/410, or None for the last.

    Assumes an asset keeps its id across generations (the NCP docs do not say otherwise).
    """
    return _SUCCESSOR[generation]
