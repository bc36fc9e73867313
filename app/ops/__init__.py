"""The operations endpoints: ``/healthz``, ``/readyz`` and ``/metrics``."""
