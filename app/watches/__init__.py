"""Watches: registering, stopping and (later) following them. No HTTP here: the API and CLI call in."""
