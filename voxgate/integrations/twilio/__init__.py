"""Twilio: the voice webhook, the Media Streams socket, and outbound calls."""
