"""The simulator's Flask app factory, and ``SimulatorServer`` serving it from a background thread.

Usage (tests, demo, benchmarks)::

    with SimulatorServer(access_key="ak", secret_key="sk") as sim:
        client = MediaIntelligenceClient(sim.url, "ak", "sk")
"""

from __future__ import annotations

import socket
import threading

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.simulator.http_server import CountingWSGIServer
from app.simulator.state import SimulatorState

#: The documented demo pair: what the simulator accepts when no keys are given.
DEMO_ACCESS_KEY = "sim-access-key"
DEMO_SECRET_KEY = "sim-secret-key"  # noqa: S105 - public demo value, not a secret
CONTROL_PREFIX = "/_sim"
STATE_KEY = "mi_simulator_state"
#: How long ``stop`` waits for connection threads to end after their sockets are shut.
STOP_GRACE_SECONDS = 5.0


def create_simulator_app(state: SimulatorState) -> Flask:
    """The simulator as a WSGI app: the simulated upstream API plus the ``/_sim`` control API."""
    app = Flask(__name__)
    app.extensions[STATE_KEY] = state

    from app.simulator.control_api import control, control_error
    from app.simulator.responses import gateway_answer
    from app.simulator.upstream_api import upstream
    from app.simulator.workflow_api import workflows
    from app.simulator.workflow_control import workflow_control

    app.register_blueprint(control)
    app.register_blueprint(workflow_control)
    app.register_blueprint(upstream)
    app.register_blueprint(workflows)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        # Routing failures (404, 405) never reach a blueprint's handlers: answer in the shape of
        # the API the path belongs to.
        status = exc.code or 500
        if is_control_path(request.path):
            return control_error(exc.description or exc.name, status)
        return gateway_answer(status)

    return app


def current_state() -> SimulatorState:
    """The state of the simulator app handling the current request."""
    return current_app.extensions[STATE_KEY]


def is_control_path(path: str) -> bool:
    """True for the control API's paths (no signature required)."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


class SimulatorServer:
    """Runs the simulator on ``host:port`` (0 picks a free port) in a daemon thread.

    ``start`` raises OSError if the address cannot be bound. Connections are HTTP/1.1 keep-alive and
    counted (``GET /_sim/stats``). ``stop`` frees held requests and closes every connection.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SimulatorState | None = None,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str = DEMO_SECRET_KEY,
        *,
        verbose: bool = False,
    ) -> None:
        self.state = state if state is not None else SimulatorState()
        self.state.add_credentials(access_key, secret_key)
        self.host = host
        self._requested_port = port
        self._verbose = verbose
        self._server: CountingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (only after ``start``)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8090`` (only after ``start``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SimulatorServer:
        """Bind and start serving; returns self."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.create_server((self.host, self._requested_port), family=family) as listener:
            self._server = CountingWSGIServer(
                listener,
                create_simulator_app(self.state),
                self.state.count_connection,
                verbose=self._verbose,
            )
        self.state.gate.reopen()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon stop() is noticed (an idle select is cheap)
            name=f"mi-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, free held requests, close every connection; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()  # returns once the accept loop has exited
        server.stopping = True  # answers from now on close their connection
        self.state.gate.close()
        server.close_connections(STOP_GRACE_SECONDS)
        server.server_close()
        thread.join(STOP_GRACE_SECONDS)
        self._server = self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
