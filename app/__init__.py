"""mi-bridge: a callback bridge for NAVER Cloud Media Intelligence.

The application factory is ``app.factory.create_app``; ``app:create_app`` (gunicorn, Flask) still
finds it here. It is looked up on first use, so importing a part of the package (the simulator, the
worker) does not build the web app's imports.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.factory import create_app

        return create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
