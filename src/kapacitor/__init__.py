"""Kapacitor: every coding-agent session as a stream of immutable events."""

__version__ = "0.1.0"
