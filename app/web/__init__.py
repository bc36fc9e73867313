"""What every HTTP entry point (API, dashboard, operations endpoints) shares: the front door,
problem+json answers and bearer-token checks."""
