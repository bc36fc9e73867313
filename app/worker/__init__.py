"""The worker: APScheduler ticks that claim due rows with leases, poll, deliver and keep house.

Jobs are plain functions of a ``WorkerRuntime``; ``mi-bridge poll-once`` runs one tick directly.
"""
