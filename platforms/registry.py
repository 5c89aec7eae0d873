"""The explicit registry of platform drivers, and URL → (driver, web-client URL) resolution."""

from __future__ import annotations

from dataclasses import dataclass

from platforms.base import PlatformDriver
from platforms.janus import JanusDriver
from vp.errors import InvalidUrl
from vp.urls import env_allowed_hosts, host_allowed, host_key, redact_url, split_url

DRIVERS: dict[str, type[PlatformDriver]] = {
    JanusDriver.name: JanusDriver,
}


@dataclass(frozen=True, slots=True)
class ResolvedMeeting:
    driver: type[PlatformDriver]
    url: str  # what the browser opens
    public_url: str  # the same without secrets, for logs and status

    @property
    def platform(self) -> str:
        return self.driver.name


def platform_names() -> list[str]:
    return sorted(DRIVERS)


def resolve(
    url: str, platform: str | None = None, allowed_hosts: frozenset[str] | None = None
) -> ResolvedMeeting:
    """Check ``url`` against the allow-lists and pick its driver; raise InvalidUrl otherwise.

    ``allowed_hosts`` (default: ``VP_ALLOWED_HOSTS``) adds hosts; such URLs open as given.
    """
    parts = split_url(url)
    extra = env_allowed_hosts() if allowed_hosts is None else allowed_hosts
    if platform is not None:
        driver = DRIVERS.get(platform)
        if driver is None:
            raise InvalidUrl(f"unknown platform {platform!r}; known: {', '.join(DRIVERS)}")
    else:
        candidates = [d for d in DRIVERS.values() if d.claims(parts)]
        if len(candidates) != 1:
            raise InvalidUrl("cannot infer the platform from the URL; pass --platform")
        driver = candidates[0]
    if not host_allowed(parts, driver.host_rules, extra):
        raise InvalidUrl(f"host {parts.hostname!r} is not allowed for {driver.name}")
    given = url.strip()
    if host_key(parts) in extra or (parts.port is None and parts.hostname in extra):
        target = given  # operator-allowed hosts (replicas, self-hosted rooms) open as given
    else:
        target = driver.web_client_url(given)
        # A rewrite must not escape the allow-list either.
        if target != given and not host_allowed(split_url(target), driver.host_rules, extra):
            raise InvalidUrl("the web-client URL is not on the allow-list")
    return ResolvedMeeting(driver=driver, url=target, public_url=redact_url(target))
