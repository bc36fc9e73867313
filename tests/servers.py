"""``ServerThread``: a socketserver served from a daemon thread, the way every local stand-in of the
tests (receiver, hostile servers, fake Slack, the dashboard's live server) runs."""

from __future__ import annotations

import socketserver
import threading


class ServerThread:
    """Serves ``server`` (bound to 127.0.0.1) from a daemon thread; ``url`` is its http:// base."""

    def __init__(self, server: socketserver.BaseServer, poll_interval: float = 0.05) -> None:
        self.server = server
        address = server.server_address
        self.url = f"http://127.0.0.1:{address[1]}"  # type: ignore[index]  # an AF_INET (host, port)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_seconds: float = 10.0) -> None:
        """Stop serving and close the socket (a server never started is only closed)."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=join_seconds)
        self.server.server_close()
