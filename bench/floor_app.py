"""The floor of ``bench/registration_floor.py``: a tiny Flask app whose one route writes one row.

``POST /floor`` parses the JSON body (as the API does), INSERTs one row into ``floor_rows`` (created by
the benchmark) on ``DATABASE_URL`` and commits, then answers 201 with a small JSON object: the
smallest durable write. ``GET /floor`` answers 200 without touching the database (the benchmark's
readiness check only). No authentication, no validation, no logging.

The engine is the bridge's own: the URL as ``app.config`` rewrites it for psycopg 3, the options of
``app.db._engine_options`` (pool 10 + overflow 10, the connect timeout, no pre-ping) and its pool
checkout hook (``app.db.discard_if_dead``), so the floor pays what the bridge's engine pays for a
pooled connection. Served with ``gunicorn -c gunicorn.conf.py bench.floor_app:app``, the same
settings as the product.
"""

from __future__ import annotations

from functools import cache

from flask import Flask, jsonify, request
from sqlalchemy import Engine, create_engine, event, text

app = Flask(__name__)
#: ``bench/registration_floor.py`` creates it before the servers start.
FLOOR_TABLE = (
    "CREATE TABLE IF NOT EXISTS floor_rows (id bigserial PRIMARY KEY, asset_id text NOT NULL)"
)
INSERT = text("INSERT INTO floor_rows (asset_id) VALUES (:asset_id)")


def engine_options(url: str) -> dict:
    """The bridge's engine options for ``url`` (``app.db``)."""
    from app.db import _engine_options

    return dict(_engine_options(url))


@cache
def engine() -> Engine:
    from app.config import load_settings
    from app.db import discard_if_dead

    url = load_settings().sqlalchemy_url  # postgresql+psycopg://..., as the bridge connects
    built = create_engine(url, **engine_options(url))
    event.listen(built, "checkout", discard_if_dead)  # as app.db.init_app does for PostgreSQL
    return built


@app.get("/floor")
def ready():
    return jsonify(floor="ready")


@app.post("/floor")
def floor():
    payload = request.get_json()
    with engine().begin() as connection:
        connection.execute(INSERT, {"asset_id": payload.get("asset_id")})
    return jsonify(floor="written", asset_id=payload.get("asset_id")), 201
