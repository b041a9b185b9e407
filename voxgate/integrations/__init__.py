"""Voxgate with no client of its own in between: phone calls through Twilio (in and out)."""
