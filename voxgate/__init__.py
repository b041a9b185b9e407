"""Voxgate: a self-hosted voice agent server speaking the Voice Agent API wire protocol."""

__version__ = "0.1.0"
