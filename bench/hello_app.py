"""The hello-world baseline of ``bench/registration_api.py``: a bare Flask app, one route.

``GET /hello`` answers a small JSON object; ``POST /hello`` parses the JSON body first (as the API
does) and answers the same object with 201. No database, no logging, no authentication. Served with
``gunicorn -c gunicorn.conf.py bench.hello_app:app``, the same settings as the product.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(hello="world")


@app.post("/hello")
def hello_post():
    payload = request.get_json()
    return jsonify(hello="world", asset_id=payload.get("asset_id")), 201
