"""Outbound HTTP: where the bridge may send requests (the address guard) and how (later: the sender)."""
