"""Voxgate with no client in between: agent files and their webhook tools, and phone calls (Twilio)."""
