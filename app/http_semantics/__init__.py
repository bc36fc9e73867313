"""HTTP rules shared by the upstream poller and the notifiers (no I/O, no app imports)."""
