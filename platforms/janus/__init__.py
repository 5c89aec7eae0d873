"""The Janus AudioBridge demo page (driver, decisions, page script)."""

from platforms.janus.driver import JanusDriver

__all__ = ["JanusDriver"]
