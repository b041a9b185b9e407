"""The Voice Agent API wire protocol (pydantic models in events.py)."""
