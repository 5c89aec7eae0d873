/*
 * The plumbing the replica clients share (served under /__replica/common/): a small DOM
 * builder, reports to the replica server, the scenario's timers, turn-taking among the present
 * participants and the command poll. Each replica keeps its own views and quirks.
 */
(function () {
  'use strict';

  // h(tag, attrs, ...children): attrs "class", "text", "on<event>" (a handler, passed through
  // wrap(key, handler) when given), anything else an attribute (true: present, empty).
  function makeH(wrap) {
    return function h(tag, attrs) {
      const el = document.createElement(tag);
      for (const k of Object.keys(attrs || {})) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on')) el.addEventListener(k.slice(2), wrap ? wrap(k, v) : v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
      for (let i = 2; i < arguments.length; i++) {
        const c = arguments[i];
        if (!c) continue; // null, false, '' (a condition that did not hold): nothing
        el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
      }
      return el;
    };
  }

  // POST an event (state, speaker, chat, mic…) to the replica server's meeting.
  function report(base, body) {
    fetch(base + '/report', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      keepalive: true,
    }).catch(function () {});
  }

  // A scenario timer (seconds; null/undefined: never), kept in timers to clear at the end.
  function later(timers, seconds, fn) {
    if (seconds === null || seconds === undefined) return;
    timers.push(setTimeout(fn, Math.max(0, seconds * 1000)));
  }

  // Whose turn is next: the first present index after the current speaker's, wrapping; -1 none.
  function nextSpeaker(present, speaking) {
    if (!present.length) return -1;
    for (const i of present) if (i > speaking) return i;
    return present[0];
  }

  // Poll the meeting's commands (admit, deny, chat, end…) every 300 ms, each applied once.
  function pollCommands(base, apply) {
    let after = 0;
    async function poll() {
      try {
        const r = await fetch(base + '/commands?after=' + after, { cache: 'no-store' });
        if (r.ok) {
          for (const c of await r.json()) {
            after = Math.max(after, c.seq);
            try {
              apply(c);
            } catch (e) {
              console.error('[replica] command failed', c, e);
            }
          }
        }
      } catch (e) {}
      setTimeout(poll, 300);
    }
    poll();
  }

  window.ReplicaKit = {
    makeH: makeH,
    report: report,
    later: later,
    nextSpeaker: nextSpeaker,
    pollCommands: pollCommands,
  };
})();
