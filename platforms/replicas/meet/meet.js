/*
 * Google Meet web client replica: the anonymous guest path from meet.google.com/<code> to the call.
 *
 * Reproduces, from ../../../../shared/facts/web-clients-meet-webex.md (Google Meet):
 *   - the green room: input[type="text"][aria-label="Your name"] (placeholder "Your name"), the
 *     toggles div[role="button"][aria-label="Turn off microphone"|"Turn off camera"] whose
 *     labels flip to "Turn on …" when off, the join button //button[.//span[text()="Ask to
 *     join"]] (no aria-label; enabled once a name is typed), a 3-dot "More options" button
 *     with an aria-label and a span (the trap V 988bd728 fell into), the "Sign in with your
 *     Google account" modal answered with "Got it", which says "Instead of waiting to be let
 *     in…" (not a lobby: BaaS#90), and an invisible reCAPTCHA frame present on every join;
 *   - asking: "Asking to be let in…" / "You’ll join the call when someone lets you in", with
 *     "Leave call", the "Call controls" region and the effects tile [data-participant-id]
 *     "Backgrounds and effects" already rendered (V-sel, BaaS#198, V-adm), and a "Return to
 *     home screen" button that is not a rejection (Vexa#471);
 *   - refusals: "Someone in the call denied your request to join", "No one responded to your
 *     request to join the call", "Check your meeting code", the sign-in wall (h1 "Sign in"
 *     with "your Google Account"), "You can't join this video call", a visible reCAPTCHA;
 *   - the call: tiles [data-participant-id].oZRSLe with data-tile-media-id, the name in
 *     span.notranslate, the speaking indicator class Oaajhc (silent gjg47c), the VP's own tile
 *     carrying [data-self-name]; button[aria-label="Turn on captions"]; "Chat with everyone"
 *     (aria-pressed) opening aside[aria-label="Side panel"] with the .aops0b / .HNucUd /
 *     .poVWob / .RLrADb[data-message-id] / .jO4O1 structure (and the pin overlay that also
 *     carries data-message-id), textarea[aria-label="Send a message"] sent with Enter (the
 *     sender of own messages is the VP's name, V-chat); People with span[data-avatar-count];
 *     "Leave call"; after admission the "Others may see your video differently" notice ("Got
 *     it") and, when the scenario says so, the "Gemini is taking notes" dialog whose answer is
 *     its "Join now" (data-mdc-dialog-action="ok") — its "Leave" leaves;
 *   - ends: .roSPhc "Your host ended the meeting for everyone" / "You've been removed from the
 *     meeting", "You left the meeting", each with "Return to home screen";
 *   - synthetic clicks (isTrusted false) are ignored, as Vexa reports of Meet (V-join);
 *   - audio: three <audio> elements under <body> fed by a rotating pool (meet-audio.js), or
 *     none (scenario audio_elements false); the VP's microphone is metered by the fake media
 *     server's uplink (../common/uplink.js): the call bar's "Turn on microphone" / "Turn off
 *     microphone" button (BaaS) decides whether it is sent.
 * Replica inventions (no source gives them; kept plausible): the layout, the ids/classes not
 * named above, the sign-in page body, the toast, the "host turned off microphones" notice.
 *
 * Scenario: /__replica/m/<id>/scenario; commands polled every 300 ms; reports POSTed (see
 * platforms/replicas/server.py). Reports: state prejoin, lobby, joined, left, ended, removed,
 * denied, not_found, login_required, captcha, blocked.
 */
(function () {
  'use strict';

  const meetingId = decodeURIComponent(location.pathname.replace(/^\/+|\/+$/g, ''));
  const base = '/__replica/m/' + encodeURIComponent(meetingId);
  const root = document.getElementById('yDmH0d');
  const BLOCK_KEY = 'meet.replica.joinAttempts.' + meetingId;

  let scenario = null;
  const st = {
    view: 'loading',
    name: '',
    mic: true,
    camera: true,
    chatOpen: false,
    messages: [], // {id, sender, text, time}
    people: [], // {name, index, present}
    speaking: -1,
    decision: null,
    pending: [],
    timers: [],
    turnTimer: null,
    nextId: 1,
  };
  let audio = null;
  let ui = null;
  // The fake media server's uplink (../common/uplink.js): the microphone the client sends.
  window.__replicaUplink = { micOn: () => st.view === 'meeting' && st.mic, report: (o) => report(o) };

  const h = window.ReplicaKit.makeH((k, v) => (k === 'onclick' ? trustedOnly(v) : v));

  // Meet ignores synthetic (isTrusted=false) clicks (V-join: Vexa drives X11 input for it).
  function trustedOnly(fn) {
    return function (ev) {
      if (!ev.isTrusted) return;
      fn.call(this, ev);
    };
  }

  function report(body) {
    window.ReplicaKit.report(base, body);
  }

  function setState(state) {
    report({ kind: 'state', state: state });
  }

  function later(seconds, fn) {
    window.ReplicaKit.later(st.timers, seconds, fn);
  }

  function show(view, node) {
    st.view = view;
    root.replaceChildren(node);
  }

  // A Material button: the label in a span, as //button[.//span[text()=…]] expects.
  function mbutton(label, attrs, onclick) {
    return h('button', Object.assign({ type: 'button', jsname: 'Qx7uuf', onclick: onclick }, attrs || {}), h('span', { class: 'UywwFc-vQzf8d', text: label }));
  }

  function dialog(title, body, actions) {
    const scrim = h('div', { class: 'scrim' });
    scrim.appendChild(
      h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': title }, h('h2', { text: title }), body, h('div', { class: 'actions' }, ...actions))
    );
    document.body.appendChild(scrim);
    return scrim;
  }

  function homeScreen(view, title, text) {
    for (const s of document.querySelectorAll('.scrim')) s.remove();
    show(
      view,
      h('div', { class: 'endscreen' }, h('div', { class: 'roSPhc', text: title }), text ? h('p', { text: text }) : null, mbutton('Return to home screen', { class: 'primary' }, function () {}))
    );
    setState(view);
  }

  // -- pre-join -------------------------------------------------------------------------------
  function toggleButton(what) {
    const on = what === 'microphone' ? st.mic : st.camera;
    return h('div', {
      role: 'button',
      tabindex: '0',
      class: 'roundbtn',
      'aria-label': (on ? 'Turn off ' : 'Turn on ') + what,
      'data-is-muted': on ? 'false' : 'true',
      onclick: function () {
        if (what === 'microphone') st.mic = !st.mic;
        else st.camera = !st.camera;
        this.replaceWith(toggleButton(what));
      },
    });
  }

  function greenRoom() {
    // The green room's preview asks for the devices; a failure does not block joining.
    try {
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) { st.previewStream = s; }, function () {});
    } catch (e) {}
    const input = h('input', { type: 'text', jsname: 'YPqjbf', 'aria-label': 'Your name', placeholder: 'Your name', maxlength: '60', autocomplete: 'off' });
    const join = mbutton('Ask to join', { class: 'primary', disabled: true }, function () {
      if (join.disabled) return;
      st.name = input.value.trim();
      askToJoin();
    });
    // The client enables the button from key events (a value set without them is not seen).
    input.addEventListener('keyup', function () {
      join.disabled = !input.value.trim();
    });
    input.addEventListener('input', function () {
      join.disabled = !input.value.trim();
    });
    const node = h(
      'div',
      { class: 'greenroom' },
      h(
        'div',
        { class: 'preview' },
        h('div', { class: 'toggles' }, toggleButton('microphone'), toggleButton('camera')),
        h('button', { type: 'button', class: 'roundbtn', 'aria-label': 'More options' }, h('span', { class: 'material', text: 'more_vert' }))
      ),
      h(
        'div',
        { class: 'panel' },
        h('h1', { text: 'What’s your name?' }),
        input,
        join,
        h('button', { type: 'button', class: 'textbtn' }, h('span', { text: 'Other ways to join' }))
      ),
      // An invisible reCAPTCHA frame is on every join (V-adm): it is not a challenge.
      h('iframe', { title: 'reCAPTCHA', src: '/__replica/static/meet/recaptcha.html', width: '1', height: '1', style: 'position:absolute;left:-10px;top:-10px;border:0', tabindex: '-1' })
    );
    show('prejoin', node);
    setState('prejoin');
    const modal = dialog(
      'Sign in with your Google account',
      h('p', { text: 'Instead of waiting to be let in, sign in with your Google account to join the call faster.' }),
      [mbutton('Got it', { class: 'textbtn' }, function () { modal.remove(); })]
    );
  }

  function askToJoin() {
    let attempts = 0;
    try {
      attempts = Number(sessionStorage.getItem(BLOCK_KEY) || '0') + 1;
      sessionStorage.setItem(BLOCK_KEY, String(attempts));
    } catch (e) {}
    setTimeout(function () {
      if (scenario.captcha) return captchaView();
      if (attempts <= (scenario.blocked_joins || 0)) {
        return homeScreen('blocked', 'You can\u2019t join this video call', null);
      }
      if (scenario.waiting_room_s !== null || scenario.manual_admission) lobby();
      else admitted();
    }, 500);
  }

  function captchaView() {
    show(
      'captcha',
      h(
        'div',
        { class: 'endscreen' },
        h('p', { text: 'Please verify that you are not a robot to continue.' }),
        h('iframe', { title: 'reCAPTCHA', src: '/__replica/static/meet/recaptcha.html', width: '304', height: '78', style: 'border:0' })
      )
    );
    setState('captcha');
  }

  function controls(inCall) {
    const people = st.people.filter((p) => p.present).length + 1;
    return h(
      'div',
      { role: 'region', 'aria-label': 'Call controls', class: 'callcontrols' },
      h('button', { type: 'button', class: 'roundbtn', 'aria-label': st.mic ? 'Turn off microphone' : 'Turn on microphone', 'data-is-muted': st.mic ? 'false' : 'true', onclick: micClicked }),
      h('button', { type: 'button', class: 'roundbtn', 'aria-label': st.camera ? 'Turn off camera' : 'Turn on camera', onclick: function () { st.camera = !st.camera; refresh(); } }),
      inCall ? h('button', { type: 'button', class: 'roundbtn', 'aria-label': 'Turn on captions' }) : null,
      inCall ? h('button', { type: 'button', class: 'roundbtn', 'aria-label': 'Chat with everyone', 'aria-pressed': st.chatOpen ? 'true' : 'false', onclick: toggleChat }) : null,
      inCall ? h('div', { role: 'button', 'aria-haspopup': 'dialog', class: 'roundbtn' }, h('span', { text: 'People' }), h('span', { 'data-avatar-count': String(people), text: String(people) })) : null,
      h('button', { type: 'button', class: 'leave', 'aria-label': 'Leave call', onclick: leaveCall })
    );
  }

  function micClicked() {
    if (!st.mic && scenario.unmute_refused && st.view === 'meeting') {
      // Replica invention (no source gives Meet's words): the host turned microphones off.
      toast('The host has turned off microphones for everyone. You can\u2019t unmute yourself.');
      return;
    }
    st.mic = !st.mic;
    refresh();
  }

  function effectsTile() {
    return h('div', { 'data-participant-id': 'visual_effects', 'aria-label': 'Backgrounds and effects', class: 'oZRSLe' }, h('span', { class: 'notranslate', text: 'Backgrounds and effects' }));
  }

  function lobby() {
    show(
      'lobby',
      h(
        'div',
        { class: 'lobby' },
        h('div', { class: 'stage' }, effectsTile()),
        h('h1', { text: 'Asking to be let in…' }),
        h('p', { text: 'You’ll join the call when someone lets you in' }),
        mbutton('Return to home screen', { class: 'textbtn' }, function () {}),
        controls(false)
      )
    );
    setState('lobby');
    if (st.decision) {
      const d = st.decision;
      st.decision = null;
      setTimeout(function () { decide(d); }, 300);
    } else if (!scenario.manual_admission) {
      later(scenario.waiting_room_s, function () { decide(scenario.deny ? 'deny' : 'admit'); });
    }
  }

  function decide(kind) {
    if (st.view !== 'lobby') return;
    if (kind === 'admit') admitted();
    else homeScreen('denied', 'Someone in the call denied your request to join', null);
  }

  // -- the call -------------------------------------------------------------------------------
  function admitted() {
    st.people = (scenario.participants || []).map((p, i) => ({ name: p.name, index: i, present: true }));
    ui = { stage: h('div', { class: 'stage' }), bar: null, side: null, list: null, toasts: h('div') };
    show('meeting', h('div', { class: 'call' }, ui.stage, ui.toasts));
    refresh();
    setState('joined');
    const notices = [];
    notices.push(function next() {
      const d = dialog('Others may see your video differently', h('p', { text: 'Your background or effects may look different to others.' }), [
        mbutton('Got it', { class: 'textbtn' }, function () { d.remove(); }),
      ]);
    });
    if (scenario.post_join_modal) {
      notices.push(function () {
        const d = dialog('Gemini is taking notes', h('p', { text: 'Gemini is taking notes and this call is being transcribed. By staying, you agree.' }), [
          mbutton('Leave', { class: 'textbtn' }, function () { d.remove(); finish('left'); }),
          mbutton('Join now', { class: 'textbtn', 'data-mdc-dialog-action': 'ok' }, function () { d.remove(); }),
        ]);
      });
    }
    for (const n of notices) n();
    later(scenario.end_after_s, function () { finish('ended'); });
    later(scenario.remove_after_s, function () { finish('removed'); });
    later(scenario.everyone_leaves_after_s, function () {
      for (const p of st.people) if (p.present) participantLeaves(p.name);
    });
    for (const line of scenario.chat || []) later(line.at_s, function () { addMessage(line.sender, line.text); });
    const queued = st.pending;
    st.pending = [];
    for (const c of queued) meetingCommand(c);
    startAudio();
  }

  async function startAudio() {
    if (!st.people.length) return;
    audio = new window.MeetAudio(meetingId, st.people.length, scenario);
    try {
      await audio.start();
    } catch (e) {
      console.error('[replica] meeting audio failed', e);
      return;
    }
    if (st.view !== 'meeting') {
      audio.stop();
      return;
    }
    if (scenario.audio_elements === false) audio.playThroughWebAudio();
    else ui.audioEls = audio.bindAudioElements();
    nextTurn();
  }

  function nextTurn() {
    clearTimeout(st.turnTimer);
    setSpeaker(window.ReplicaKit.nextSpeaker(st.people.filter((p) => p.present).map((p) => p.index), st.speaking));
  }

  function setSpeaker(i) {
    clearTimeout(st.turnTimer);
    st.turnTimer = null;
    if (!ui) return;
    if (audio) audio.setSpeaker(i);
    const changed = i !== st.speaking;
    st.speaking = i;
    renderTiles();
    if (changed && i >= 0) report({ kind: 'speaker', name: st.people[i].name });
    if (i >= 0) st.turnTimer = setTimeout(nextTurn, scenario.speak_turn_s * 1000);
  }

  function tile(name, index, self) {
    const speaking = !self && index === st.speaking;
    return h(
      'div',
      {
        class: 'oZRSLe',
        'data-participant-id': 'spaces/' + meetingId + '/devices/' + (self ? 0 : index + 1),
        'data-tile-media-id': 'spaces/' + meetingId + '/devices/' + (self ? 0 : index + 1),
        'data-self-name': self ? name : null,
      },
      h('div', { class: 'IisKdb ' + (speaking ? 'Oaajhc' : 'gjg47c') }),
      h('span', { class: 'notranslate', text: name })
    );
  }

  function renderTiles() {
    if (!ui) return;
    const tiles = [tile(st.name, -1, true)];
    for (const p of st.people) if (p.present) tiles.push(tile(p.name, p.index, false));
    ui.stage.replaceChildren.apply(ui.stage, tiles);
  }

  function refresh() {
    if (!ui) return;
    renderTiles();
    const bar = controls(true);
    if (ui.bar) ui.bar.replaceWith(bar);
    else ui.stage.after(bar);
    ui.bar = bar;
  }

  function participantLeaves(name) {
    const p = st.people.find((q) => q.name === name && q.present);
    if (!p) return;
    p.present = false;
    toast(name + ' has left the call');
    refresh();
    if (st.speaking === p.index) nextTurn();
  }

  function toggleChat() {
    st.chatOpen = !st.chatOpen;
    if (st.chatOpen) {
      ui.list = h('div', { class: 'messages', 'aria-live': 'polite' });
      const ta = h('textarea', { 'aria-label': 'Send a message', placeholder: 'Send a message', rows: '1', maxlength: '500' });
      ta.addEventListener('keydown', function (ev) {
        if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing) return;
        ev.preventDefault();
        const text = ta.value.trim();
        ta.value = '';
        if (!text) return;
        report({ kind: 'chat', sender: st.name, text: text });
        addMessage(st.name, text);
      });
      ui.side = h('aside', { 'aria-label': 'Side panel', class: 'sidepanel' }, h('h2', { text: 'In-call messages' }), ui.list, ta);
      document.body.appendChild(ui.side);
      for (const m of st.messages) ui.list.appendChild(messageNode(m));
    } else if (ui.side) {
      ui.side.remove();
      ui.side = null;
      ui.list = null;
    }
    refresh();
  }

  function messageNode(m) {
    const copy = h('div', { class: 'jO4O1' }, m.text);
    return h(
      'div',
      { class: 'aops0b' },
      h('div', { class: 'HNucUd' }, h('div', { class: 'poVWob', text: m.sender }), h('div', { class: 'MuzmKe', text: m.time })),
      h(
        'div',
        { class: 'beTDc' },
        h('div', { class: 'RLrADb', 'data-message-id': m.id }, copy, h('div', { class: 'VYBDae-Bz112c-LgbsSe', 'data-message-id': m.id, 'aria-label': 'Pin message' }))
      )
    );
  }

  function addMessage(sender, text) {
    const m = {
      id: 'spaces/' + meetingId + '/messages/' + st.nextId++,
      sender: sender,
      text: text,
      time: new Date().toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' }),
    };
    st.messages.push(m);
    if (ui && ui.list) ui.list.appendChild(messageNode(m));
  }

  function toast(text) {
    if (!ui) return;
    const t = h('div', { class: 'toast', role: 'status', text: text });
    ui.toasts.appendChild(t);
    setTimeout(function () { t.remove(); }, 3000);
  }

  function leaveCall() {
    if (st.view === 'lobby') {
      homeScreen('left', 'You left the meeting', null);
      return;
    }
    finish('left');
  }

  function finish(kind) {
    if (st.view !== 'meeting') return;
    for (const t of st.timers) clearTimeout(t);
    clearTimeout(st.turnTimer);
    if (audio) audio.stop();
    audio = null;
    if (ui && ui.side) ui.side.remove();
    for (const a of document.querySelectorAll('body > audio')) a.remove();
    ui = null;
    const title = {
      ended: 'Your host ended the meeting for everyone',
      removed: 'You\u2019ve been removed from the meeting',
      left: 'You left the meeting',
    }[kind];
    homeScreen(kind, title, null);
  }

  // -- commands -------------------------------------------------------------------------------
  function meetingCommand(c) {
    switch (c.kind) {
      case 'chat':
        addMessage(String(c.sender || 'Someone'), String(c.text || ''));
        break;
      case 'end':
        finish('ended');
        break;
      case 'remove':
        finish('removed');
        break;
      case 'leave':
        participantLeaves(String(c.name || ''));
        break;
      case 'speak': {
        const p = st.people.find((q) => q.name === c.name && q.present);
        if (p) setSpeaker(p.index);
        break;
      }
      case 'toast':
        toast(String(c.text || 'Your connection is unstable'));
        break;
      default:
        break;
    }
  }

  function apply(c) {
    if (c.kind === 'admit' || c.kind === 'deny') {
      if (st.view === 'lobby') decide(c.kind);
      else if (['loading', 'prejoin'].includes(st.view)) st.decision = c.kind;
      return;
    }
    if (st.view === 'meeting') meetingCommand(c);
    else if (['loading', 'prejoin', 'lobby'].includes(st.view)) st.pending.push(c);
  }

  async function boot() {
    try {
      const r = await fetch(base + '/scenario', { cache: 'no-store' });
      if (r.ok) scenario = await r.json();
    } catch (e) {}
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (!scenario || scenario.not_found) {
      homeScreen('not_found', 'Check your meeting code', 'Make sure you entered the correct meeting code in the URL, for example: https://meet.google.com/xxx-yyyy-zzz');
      return;
    }
    window.ReplicaKit.pollCommands(base, apply);
    if (scenario.login_required) {
      show('login_required', h('div', { class: 'endscreen' }, h('div', { class: 'signin' }, h('h1', { text: 'Sign in' }), h('div', { text: 'to continue to Google Meet. Use your Google Account.' }))));
      setState('login_required');
      return;
    }
    greenRoom();
  }

  boot();
})();
