"""Cross-request state shared by N API workers (`storage/state.py`): Redis."""

from stagewise.storage.shared.redis_state import RedisState, redact

__all__ = ["RedisState", "redact"]
