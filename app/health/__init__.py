"""The bridge's own health: the bridge-wide state row (credentials, rate-limit pause) and the one
readiness rule that ``/readyz``, the dashboard banner and the metrics share."""
