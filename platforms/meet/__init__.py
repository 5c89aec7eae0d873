"""Google Meet (``meet.google.com``), joined as an anonymous guest from the web."""

from platforms.meet.driver import MeetDriver

__all__ = ["MeetDriver"]
