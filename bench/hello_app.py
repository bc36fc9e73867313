"""The hello-world baseline of ``bench/registration_api.py``: a bare Flask app, one route.

``GET /hello`` answers a small JSON object; ``POST /hello`` parses the JSON body first (as the API
does) and answers the same object with 201. No database, no logging, no authentication.
``POST /hello/insert`` is the smallest durable write: it parses the body, INSERTs one row into
``hello_rows`` (created by the benchmark) on ``DATABASE_URL`` with a pooled SQLAlchemy Core engine,
commits, and answers 201. Served with ``gunicorn -c gunicorn.conf.py bench.hello_app:app``, the same
settings as the product.
"""

from __future__ import annotations

import os
from functools import cache

from flask import Flask, jsonify, request
from sqlalchemy import Engine, create_engine, text

app = Flask(__name__)
#: ``bench/registration_api.py`` creates it before the servers start.
HELLO_TABLE = (
    "CREATE TABLE IF NOT EXISTS hello_rows (id serial PRIMARY KEY, asset_id text NOT NULL)"
)


@cache
def engine() -> Engine:
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, pool_size=8)


@app.get("/hello")
def hello():
    return jsonify(hello="world")


@app.post("/hello")
def hello_post():
    payload = request.get_json()
    return jsonify(hello="world", asset_id=payload.get("asset_id")), 201


@app.post("/hello/insert")
def hello_insert():
    payload = request.get_json()
    with engine().begin() as connection:
        connection.execute(
            text("INSERT INTO hello_rows (asset_id) VALUES (:asset_id)"),
            {"asset_id": payload.get("asset_id")},
        )
    return jsonify(hello="world", asset_id=payload.get("asset_id")), 201
