"""Operators are told: conditions read from the database become ``bridge.alert`` events to
``BRIDGE_ALERT_TARGETS`` (``evaluate``), delivered by the outbox from the alerts' own watch
(``watch``); with no worker alive, the web process's sentinel sends them itself (``sentinel``)."""
