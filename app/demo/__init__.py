"""The one-command demo: ``mi-bridge demo`` (see ``command``)."""

from app.demo.command import demo_command

__all__ = ["demo_command"]
