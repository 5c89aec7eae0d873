"""The toolkit every platform driver uses.

Meeting web clients change every few weeks and load through redirects, so drivers poll: one
``evaluate`` returns a snapshot of everything the driver needs (a ``TypedDict`` per platform,
decided on by the platform's pure ``decisions`` module), and the helpers here turn the
stream of snapshots into events the same way on every platform:

* :func:`read_snapshot` — the one navigation-tolerant ``evaluate`` (None while a navigation
  replaces the document; a closed page still raises).
* :class:`Debounce` — a signal counts only once it held on N consecutive polls.
* :class:`AloneTimer` — "no one else here" for long enough.
* :class:`SeenChat` — the one bounded rule for which chat lines are new.
* :func:`send_chat_confirmed` — post a chat message and see it in the chat list, retried once.
* :func:`type_into` — clear a field and type with real key events.
* :class:`PageScript` — the page scripts, from the ``page.js`` file next to their driver.
* :func:`page_change` — wait for the document to change (or a timeout): how the join steps
  react to the client at once instead of a poll interval later.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import structlog

from vp.errors import VpError

if TYPE_CHECKING:
    from playwright.async_api import Frame, Locator, Page

    from platforms.base import MeetingOver

log = structlog.get_logger(__name__)

S = TypeVar("S")
M = TypeVar("M")  # a platform's meeting snapshot (TypedDict)


def missing_ui(
    in_meeting: Callable[[M], bool], over: MeetingOver
) -> Callable[[M | None], MeetingOver | None]:
    """A ``gone_signal``: ``over`` while the snapshot (if any) does not show the meeting."""
    return lambda snap: over if snap is None or not in_meeting(snap) else None


PRELUDE = Path(__file__).with_name("page_prelude.js")


class PageScript:
    """A driver's ``page.js``: one JavaScript expression whose value is an object of functions,
    each evaluated in the page on its own (``fn("name")``). Kept in a ``.js`` file next to the
    driver so it is linted and syntax-checked as JavaScript (tests/unit/test_driver_toolkit.py).
    The helpers of ``platforms/page_prelude.js`` (``vis``, ``visible``, ``q``, ``qa``,
    ``anyVisible``) are in scope: :attr:`source` declares them around the page script.
    """

    def __init__(self, package_file: str, name: str = "page.js") -> None:
        self.path = Path(package_file).parent / name
        page = self.path.read_text(encoding="utf-8").strip().rstrip(";")
        prelude = PRELUDE.read_text(encoding="utf-8").strip()
        self.source = f"(() => {{\n{prelude}\nreturn ({page});\n}})()"
        self._calls: dict[str, str] = {}

    def fn(self, name: str) -> str:
        """A function expression ``(arg) => <page.js>.name(arg)`` for ``evaluate``."""
        call = self._calls.get(name)
        if call is None:
            call = self._calls[name] = f"(arg) => ({self.source}).{name}(arg)"
        return call


async def read_snapshot(target: Page | Frame, script: str, arg: Any = None) -> Any:
    """Evaluate ``script`` in the page (or frame) and return its result.

    None while a navigation replaces the document (the execution context is destroyed); the
    error is raised when the page itself is closed. Callers cast the result to their
    platform's snapshot ``TypedDict``.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import Page

    try:
        return await target.evaluate(script, arg)
    except PlaywrightError:
        page = target if isinstance(target, Page) else target.page
        if page.is_closed():
            raise
        return None


# Resolves true on the first DOM mutation (nodes, attributes, text), false after ``ms``.
PAGE_CHANGE_JS = """
(ms) => new Promise((resolve) => {
  let timer = 0;
  const observer = new MutationObserver(() => done(true));
  const done = (changed) => { observer.disconnect(); clearTimeout(timer); resolve(changed); };
  observer.observe(document, { subtree: true, childList: true, attributes: true,
                               characterData: true });
  timer = setTimeout(() => done(false), ms);
})
"""


async def page_change(target: Page | Frame, timeout_s: float, floor_s: float = 0.02) -> None:
    """Return once ``target``'s document changes, or after ``timeout_s``.

    A join step (a click, a typed name) shows its result in the DOM within milliseconds to
    a second; polling at a fixed interval adds half an interval per step on average. This
    returns at the first mutation instead. ``floor_s`` spaces successive reads, so a client
    whose DOM never stops changing (timers, spinners) is read at most every ``floor_s``. A
    navigation (the document is replaced) counts as a change; a closed page returns at once
    (the next read raises).
    """
    from playwright.async_api import Error as PlaywrightError

    await asyncio.sleep(floor_s)
    wait_ms = max(0, round((timeout_s - floor_s) * 1000))
    try:
        # The page's own timer resolves the promise; the outer bound covers a page that is
        # too busy to run it.
        await asyncio.wait_for(target.evaluate(PAGE_CHANGE_JS, wait_ms), timeout_s + 1.0)
    except (PlaywrightError, TimeoutError):
        return


class Debounce(Generic[S]):
    """A signal counts once seen on ``polls`` consecutive polls (a different one restarts).

    Meeting clients flash end-like screens, toasts and empty DOMs during reconnects; a real
    end stays. ``see(None)`` is a poll without the signal. Signals are the same when their
    ``key`` is (default: equal signals); the latest one is returned.
    """

    def __init__(self, polls: int, key: Callable[[S], Hashable] = lambda signal: signal) -> None:
        self.polls = polls
        self._key = key
        self._current: Hashable = None
        self._streak = 0

    def see(self, signal: S | None) -> S | None:
        """Record one poll; return the signal once it has held long enough."""
        if signal is None:
            self.reset()
            return None
        key = self._key(signal)
        if self._streak and key == self._current:
            self._streak += 1
        else:
            self._current, self._streak = key, 1
        return signal if self._streak >= self.polls else None

    def reset(self) -> None:
        self._current, self._streak = None, 0


class AloneTimer:
    """True once no other participant has been seen for ``timeout`` seconds.

    ``update(None)`` means "unknown" (no roster on this poll) and restarts the wait, as a
    participant does: the VP leaves only when it knows it is alone.
    """

    def __init__(
        self,
        timeout: float,
        *,
        alone_at_start: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        self._since: float | None = clock() if alone_at_start else None

    def update(self, alone: bool | None) -> bool:
        now = self._clock()
        if not alone:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.timeout


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One chat line as a page shows it. ``key`` identifies the line: the DOM's message id
    where the client has one, else what it shows (sender, time, text)."""

    key: str
    sender: str
    text: str
    mine: bool = False


class SeenChat:
    """Which chat lines were reported already: one rule for every platform.

    Chat lists are virtualised or re-mounted, so the same line is read many times. The
    ``n``-th copy of a key in one snapshot is new only when fewer than ``n`` copies were ever
    seen: a re-rendered list repeats nothing, while the same words sent twice (no DOM id, same
    key) are two lines. Bounded: past ``limit`` keys the oldest are forgotten.
    """

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self._counts: OrderedDict[str, int] = OrderedDict()

    def new_lines(self, lines: Iterable[ChatLine]) -> list[ChatLine]:
        here: Counter[str] = Counter()
        fresh: list[ChatLine] = []
        for line in lines:
            here[line.key] += 1
            if here[line.key] <= self._counts.get(line.key, 0):
                continue
            self._counts[line.key] = here[line.key]
            self._counts.move_to_end(line.key)
            fresh.append(line)
        while len(self._counts) > self.limit:
            self._counts.popitem(last=False)
        return fresh

    def __len__(self) -> int:
        return len(self._counts)


async def send_chat_confirmed(
    platform: str,
    write: Callable[[int], Awaitable[bool]],
    own_lines: Callable[[], Awaitable[Iterable[Hashable]]],
    *,
    prepare: Callable[[], Awaitable[None]] | None = None,
    attempts: int = 2,
    confirm_s: float = 4.0,
    poll_s: float = 0.2,
) -> None:
    """Post a chat message and wait to see it in the chat list; try ``attempts`` times.

    ``prepare`` opens the chat (raising when it cannot); ``own_lines`` lists keys of the VP's
    own lines with this text now shown; ``write(attempt)`` types and sends once (False: the
    composer did not take the text, try again). Confirmed when some key shows more copies
    than before the write, so a virtualised list scrolling old copies away cannot fake it.
    """
    for attempt in range(attempts):
        if prepare is not None:
            await prepare()
        before = Counter(await own_lines())
        if not await write(attempt):
            log.info("chat.not_written", platform=platform, attempt=attempt)
            continue
        deadline = time.monotonic() + confirm_s
        while time.monotonic() < deadline:
            await asyncio.sleep(poll_s)
            if Counter(await own_lines()) - before:
                return
        log.warning("chat.not_confirmed", platform=platform, attempt=attempt)
    raise VpError(f"the chat message did not appear in the {platform} chat")


async def type_into(
    page: Page,
    field: Locator | Callable[[], Awaitable[object]],
    value: str,
    *,
    delay_ms: float = 10,
    paste: bool = False,
) -> bool:
    """Focus ``field``, clear it and type ``value`` with real key events.

    Clients enable their Join buttons on key events only (synthetic setters are ignored), and
    overlays may cover the field, so it is focused (never clicked). ``field`` may be a
    callable focusing through the DOM; False from it means nothing to type into. ``paste``
    inserts the text in one input event (rich editors) instead of key by key.
    """
    if callable(field):
        if not await field():
            return False
    else:
        await field.focus()
    keyboard = page.keyboard
    await keyboard.press("ControlOrMeta+A")
    await keyboard.press("Backspace")
    if not value:
        pass  # cleared
    elif paste:
        await keyboard.insert_text(value)
    else:
        await keyboard.type(value, delay=delay_ms)
    return True


def split_selectors(selector: str) -> list[str]:
    """A comma list of selectors, split at top level (not inside quotes or brackets)."""
    parts: list[str] = []
    depth, quote, start = 0, None, 0
    for i, ch in enumerate(selector):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(selector[start:i].strip())
            start = i + 1
    parts.append(selector[start:].strip())
    return [p for p in parts if p]


async def first_visible(where: Page | Frame, selector: str, page: Page) -> Locator | None:
    """The first visible match of ``selector`` in ``where`` (a comma list is tried in order,
    five matches of each at most); None while nothing matches. Raises once ``page`` closed."""
    from playwright.async_api import Error as PlaywrightError

    for part in split_selectors(selector):
        loc = where.locator(part)
        try:
            for i in range(min(await loc.count(), 5)):
                if await loc.nth(i).is_visible():
                    return loc.nth(i)
        except PlaywrightError:
            if page.is_closed():
                raise
    return None


async def click_first_visible(
    where: Page | Frame, selector: str, page: Page, timeout_s: float = 2.0
) -> bool:
    """Click the first visible match of ``selector`` in ``where`` (see :func:`first_visible`).
    False when nothing matches or the click does not take; raises once ``page`` closed."""
    from playwright.async_api import Error as PlaywrightError

    target = await first_visible(where, selector, page)
    if target is None:
        return False
    try:
        await target.click(timeout=timeout_s * 1000)
    except PlaywrightError:
        if page.is_closed():
            raise
        return False
    return True


async def poll_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, every_s: float = 0.2
) -> bool:
    """Check every ``every_s`` s (the first after one wait) until ``check()`` is true (True)
    or ``timeout_s`` s have passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(every_s)
        if await check():
            return True
    return False


async def toggle_microphone(
    ui: Page | Frame,
    on: bool,
    *,
    unmute_label: str,
    mute_label: str,
    timeout_s: float = 5.0,
    element: str = "button",
) -> bool:
    """Set the client's microphone through its own toggle button, found by its aria-label
    (``unmute_label`` while muted, ``mute_label`` while not; case-insensitive) on ``element``
    (a tag: Webex's controls are ``mdc-button``). True once the button shows the wanted state;
    False when there is no such button or the click does not take (the host muted everyone:
    the button is disabled, or the client asks to unmute instead)."""
    wanted = ui.locator(f'{element}[aria-label="{mute_label if on else unmute_label}" i]')
    toggle = ui.locator(f'{element}[aria-label="{unmute_label if on else mute_label}" i]')
    # The control may not be there yet (Zoom shows it once computer audio is joined, which
    # housekeeping does right after admission): wait for one of the two, briefly.
    deadline = time.monotonic() + timeout_s
    while True:
        if await wanted.count():
            return True
        if await toggle.count():
            break
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)
    try:  # a disabled button (host muted everyone) never takes the click
        await toggle.first.click(timeout=timeout_s * 1000)
        await wanted.first.wait_for(state="attached", timeout=timeout_s * 1000)
    except Exception:
        return False
    return True


# -- refusals in the platform's own words (issue 17 part 3) -----------------------------
def platform_said(pattern: str | re.Pattern[str], *texts: str | None, limit: int = 200) -> str:
    """The line of the page's text where ``pattern`` matches (case-insensitive for a string
    pattern), whitespace collapsed: what the platform itself said. "" when no single line
    matches (a match across lines, or a refusal read from the URL or an element)."""
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.I)
    for text in texts:
        for line in (text or "").splitlines():
            if compiled.search(line):
                return " ".join(line.split())[:limit]
    return ""


def refusal_detail(summary: str, platform: str, said: str = "", organiser: str = "") -> str:
    """A refusal's status detail: our summary, the platform's words, and what the organiser
    can change (where the facts tell it)."""
    detail = summary
    if said:
        detail += f"; {platform} says \u201c{said}\u201d"
    if organiser:
        detail += f"; the organiser can {organiser}"
    return detail
