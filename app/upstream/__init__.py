"""Media Intelligence: the one package that knows the upstream API (paths, signature, envelopes)."""

from app.upstream.client import MediaIntelligenceClient
from app.upstream.generations import Generation, status_path, successor
from app.upstream.outcomes import PollOutcome, PollResult, classify_response, parse_retry_after

__all__ = [
    "Generation",
    "MediaIntelligenceClient",
    "PollOutcome",
    "PollResult",
    "classify_response",
    "parse_retry_after",
    "status_path",
    "successor",
]
