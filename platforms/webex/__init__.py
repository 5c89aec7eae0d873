"""Webex Meetings as a guest from the browser (driver, decisions, URL rules, page script)."""

from platforms.webex.driver import WebexDriver

__all__ = ["WebexDriver"]
