"""Media Intelligence: the one package that knows the upstream API (paths, signature, envelopes)."""
