"""``python -m app.simulator``: the same command as ``mi-bridge simulator``."""

from app.simulator.cli import simulator_command

simulator_command(prog_name="python -m app.simulator")
