"""Amazon Chime as an anonymous guest (driver, decisions, URL rules, page script)."""

from platforms.chime.driver import ChimeDriver

__all__ = ["ChimeDriver"]
