"""Microsoft Teams as an anonymous guest (driver, decisions, URL rules, page script)."""

from platforms.teams.driver import TeamsDriver

__all__ = ["TeamsDriver"]
