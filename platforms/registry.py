"""The explicit registry of platform drivers, and URL → (driver, web-client URL) resolution.

Drivers are listed by module path and imported on first use, so starting a VP for one
platform does not load the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from platforms.base import PlatformDriver
from vp.errors import InvalidUrl
from vp.urls import (
    env_allowed_hosts,
    host_allowed,
    operator_allowed,
    redact_url,
    split_url,
    url_allowed,
)

# platform name → "module:Class"
REGISTRY: dict[str, str] = {
    "zoom": "platforms.zoom.driver:ZoomDriver",
    "teams": "platforms.teams.driver:TeamsDriver",
    "chime": "platforms.chime.driver:ChimeDriver",
    "janus": "platforms.janus.driver:JanusDriver",
    "webex": "platforms.webex.driver:WebexDriver",
    "meet": "platforms.meet.driver:MeetDriver",
}
_loaded: dict[str, type[PlatformDriver]] = {}


def get_driver(platform: str) -> type[PlatformDriver]:
    """The driver class for ``platform``; raise InvalidUrl for an unknown platform."""
    driver = _loaded.get(platform)
    if driver is None:
        target = REGISTRY.get(platform)
        if target is None:
            raise InvalidUrl(f"unknown platform {platform!r}; known: {', '.join(REGISTRY)}")
        module, _, name = target.partition(":")
        driver = getattr(importlib.import_module(module), name)
        assert isinstance(driver, type) and issubclass(driver, PlatformDriver)
        _loaded[platform] = driver
    return driver


@dataclass(frozen=True, slots=True)
class ResolvedMeeting:
    driver: type[PlatformDriver]
    url: str  # what the browser opens
    public_url: str  # the same without secrets, for logs and status
    allowed_hosts: frozenset[str] = frozenset()  # VP_ALLOWED_HOSTS when it was resolved

    @property
    def platform(self) -> str:
        return self.driver.name

    def allows(self, url: str) -> bool:
        """Whether the VP's browser may load ``url`` as a document during this meeting: the
        same allow-list as the meeting URL, plus the hosts the platform's client itself
        navigates to (sign-in walls). Used by :mod:`vp.navguard`."""
        rules = self.driver.host_rules + self.driver.navigation_rules
        return url_allowed(url, rules, self.allowed_hosts)


def platform_names() -> list[str]:
    return sorted(REGISTRY)


def resolve(
    url: str, platform: str | None = None, allowed_hosts: frozenset[str] | None = None
) -> ResolvedMeeting:
    """Check ``url`` against the allow-lists and pick its driver; raise InvalidUrl otherwise.

    ``allowed_hosts`` (default: ``VP_ALLOWED_HOSTS``) adds hosts; such URLs open as given.
    """
    parts = split_url(url)
    extra = env_allowed_hosts() if allowed_hosts is None else allowed_hosts
    if platform is not None:
        driver = get_driver(platform)
    else:
        candidates = [d for d in map(get_driver, REGISTRY) if d.claims(parts)]
        if len(candidates) != 1:
            raise InvalidUrl("cannot infer the platform from the URL; pass --platform")
        driver = candidates[0]
    if not host_allowed(parts, driver.host_rules, extra):
        raise InvalidUrl(f"host {parts.hostname!r} is not allowed for {driver.name}")
    given = url.strip()
    if operator_allowed(parts, extra):
        target = given  # operator-allowed hosts (replicas, self-hosted rooms) open as given
    else:
        target = driver.web_client_url(given)
        # A rewrite must not escape the allow-list either.
        if target != given and not host_allowed(split_url(target), driver.host_rules, extra):
            raise InvalidUrl("the web-client URL is not on the allow-list")
    return ResolvedMeeting(
        driver=driver, url=target, public_url=redact_url(target), allowed_hosts=extra
    )
