"""Zoom: the web client as a guest (driver, decisions, URL rules, page script)."""

from platforms.zoom.driver import ZoomDriver

__all__ = ["ZoomDriver"]
