"""Liveness: answers as long as the process serves requests (no token, no database)."""

from __future__ import annotations

from flask import Blueprint, jsonify

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")
