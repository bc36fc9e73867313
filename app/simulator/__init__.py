"""A local stand-in for NAVER Cloud Media Intelligence (like stripe-mock for Stripe).

It answers the three generations of the status endpoint and their neighbours, imports from Object
Storage and scene summaries, checks signature v2 for one or more key pairs (each allowed for some
workspaces), runs assets through timed schedules on a clock the control API can move, and injects
faults on demand through a JSON control API under ``/_sim``. The bridge's demo, tests and
benchmarks run against it; users run it with ``mi-bridge simulator`` to try the bridge without NCP
credentials.
"""

from app.simulator.server import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    SimulatorServer,
    create_simulator_app,
)
from app.simulator.settings import SimConfig
from app.simulator.state import SimulatorState

__all__ = [
    "DEMO_ACCESS_KEY",
    "DEMO_SECRET_KEY",
    "SimConfig",
    "SimulatorServer",
    "SimulatorState",
    "create_simulator_app",
]
