/*
 * The Webex web client (replica), loaded in #unified-webclient-iframe from its own origin.
 * Built from the facts (shared/facts/web-clients-meet-webex.md, Webex), not from a driver:
 *  - password page: input[aria-label="Meeting password"], Next = mdc-button[type="submit"];
 *    a wrong one shows "Incorrect password"; a CAPTCHA img[alt="Captcha image"] may be shown;
 *  - preview: input[data-test="Name (required)"], input[data-test="Email (required)"], the
 *    mdc-button controls data-test="microphone-button" / "camera-button" (labels "Mute" /
 *    "Unmute", "Stop video" / "Start video") and data-test="join-button" (enabled once a name
 *    and a well-formed email were typed: key events, as the real form);
 *  - a locked meeting: "The meeting is locked"; the lobby [data-test="call_lobby_content"]
 *    "Please wait, the host will let you in soon."; denial "…denied your request…";
 *  - the meeting: [data-test="grid-layout"] with .participants-video-tile tiles (name
 *    [data-test="participant-name"], .active-speaker-halo on the speaker), the controls
 *    participants-toggle-button (aria-expanded; the panel's mdc-text h2 "Participants (N)"),
 *    in-meeting-chat-toggle-button (the chat list div.style-chat-box-* of messages with an
 *    h3.style-chat-label-* "from <sender> to everyone" and span.style-chat-msg-*, a Quill
 *    composer div#quill-composer div.ql-editor[contenteditable], Enter sends),
 *    raise-hand-button, leave-button (a dialog "Leave meeting");
 *  - end: .style-end-message-2PkYs "The host ended the meeting." / removal / "You have left".
 * Enterprise sites (scenario thin_iframe, the frame is iframe[name=thinIframe]) render the
 * enterprise client's own controls where the facts name them (L-wx, AS): password
 * input[type="password"] → button#password_validate_btn; the guest form
 * input[aria-labelledby="nameLabel"|"emailLabel"] → button#guest_next-btn; then the
 * interstitial with button#audioControlButton ("Mute"/"Unmute"), a video button
 * data-doi="VIDEO:STOP_VIDEO:…" (START_VIDEO once stopped) and button#interstitial_join_btn
 * (title "Join meeting"); in the meeting the same audio / video buttons, the chat toggle
 * button[data-doi="CHAT:OPEN_CHAT_PANEL:MENU_CONTROL_BAR"], the composer
 * #chat-panel > div > textarea[placeholder="Type your message here"] (Enter sends), and tiles
 * .videoitem-* (the speaker .videoitem-in-speaking-3a-w-, its name
 * .videoitem-full-name-content-TzQC4). Where the facts are silent about the enterprise client
 * (the lobby, the participants panel, the chat list, leave, end screens) it keeps the
 * classic DOM.
 * Audio: one mixed remote WebRTC stream played by one <audio> element in this frame; the VP's
 * microphone (getUserMedia in this frame) metered by the fake media server's uplink
 * (../common/uplink.js), sent while the microphone-button says "Mute".
 * Scenario and commands: /__replica/m/<id>/… on this origin (see platforms/replicas/server.py).
 */
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const meetingId = params.get('mid');
  const base = '/__replica/m/' + encodeURIComponent(meetingId || '');
  const root = document.getElementById('root');
  const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
  let scenario = null;
  const st = { view: 'loading', name: '', muted: false, video: true, people: [], speaking: -1,
    chatOpen: false, rosterOpen: false, messages: [], timers: [], turnTimer: null,
    decision: null, pending: [] };
  let audio = null;
  let ui = null;
  let ent = false; // the enterprise client (scenario thin_iframe)
  // The fake media server's uplink (../common/uplink.js): the microphone the client sends.
  window.__replicaUplink = { micOn: () => st.view === 'meeting' && !st.muted, report: (o) => report(o) };

  const h = window.ReplicaKit.makeH();
  function report(body) {
    window.ReplicaKit.report(base, body);
  }
  function setState(s) { report({ kind: 'state', state: s }); }
  function show(view, node) { st.view = view; root.replaceChildren(node); }
  function later(seconds, fn) {
    window.ReplicaKit.later(st.timers, seconds, fn);
  }
  function btn(label, attrs, onclick) {
    return h('mdc-button', Object.assign({}, attrs || {}, { onclick: onclick }), label);
  }

  // -- password ------------------------------------------------------------------------------
  function passwordView(error) {
    const input = ent ? h('input', { type: 'password', id: 'meeting_password', placeholder: 'Meeting password' })
      : h('input', { type: 'password', 'aria-label': 'Meeting password', placeholder: 'Meeting password' });
    const captcha = scenario.captcha ? h('div', { class: 'captcha' },
      h('img', { alt: 'Captcha image', width: 160, height: 50, src: 'data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%22160%22 height=%2250%22/%3E' }),
      h('input', { type: 'text', 'aria-label': 'Enter the code shown' })) : null;
    const next = () => {
      if (scenario.captcha) return; // the characters are never right for a bot
      if (input.value === scenario.passcode) (ent ? guestForm : preview)();
      else passwordView('Incorrect password. Try again.');
    };
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') next(); });
    show('password', h('form', { class: 'password-page', onsubmit: (ev) => { ev.preventDefault(); next(); } },
      h('mdc-text', { tagname: 'h2', text: 'Enter the meeting password' }),
      input, captcha,
      error ? h('p', { role: 'alert', class: 'error', text: error }) : null,
      ent ? h('button', { type: 'submit', id: 'password_validate_btn' }, 'Next')
        : btn('Next', { type: 'submit', variant: 'primary' }, next)));
    setState('password');
  }

  // -- enterprise: guest form, then the interstitial (L-wx, AS) ------------------------------
  function audioButton() {
    const b = h('button', { id: 'audioControlButton', type: 'button', 'aria-label': st.muted ? 'Unmute' : 'Mute' }, st.muted ? 'Unmute' : 'Mute');
    b.addEventListener('click', () => {
      if (st.muted && scenario.unmute_refused && st.view === 'meeting') return;
      st.muted = !st.muted; b.textContent = st.muted ? 'Unmute' : 'Mute'; b.setAttribute('aria-label', b.textContent);
    });
    return b;
  }
  function videoButton(where) {
    // START_VIDEO without a camera is the step the facts warn against (L-wx): it is disabled.
    const b = h('button', { type: 'button' });
    const render = () => {
      b.textContent = st.video ? 'Stop video' : 'Start video';
      b.setAttribute('data-doi', (st.video ? 'VIDEO:STOP_VIDEO:' : 'VIDEO:START_VIDEO:') + where);
      if (st.video) b.removeAttribute('disabled'); else b.setAttribute('disabled', '');
    };
    b.addEventListener('click', () => { if (st.video) { st.video = false; render(); } });
    render();
    return b;
  }
  // Like the real forms: the button enables only once both fields got real key events and
  // hold a name and a well-formed email.
  function enableWhenTyped(name, email, button) {
    const typed = { name: false, email: false };
    const refresh = () => {
      const ok = typed.name && typed.email && name.value.trim() && EMAIL.test(email.value.trim());
      if (ok) button.removeAttribute('disabled'); else button.setAttribute('disabled', '');
    };
    name.addEventListener('keydown', () => { typed.name = true; });
    email.addEventListener('keydown', () => { typed.email = true; });
    name.addEventListener('input', refresh);
    email.addEventListener('input', refresh);
  }
  // The preview asks for the devices; a failure does not block joining.
  function askDevices() {
    try {
      navigator.mediaDevices.getUserMedia({ audio: true }).then((s) => { st.previewStream = s; }, () => {});
    } catch (e) {}
  }
  function guestForm() {
    const name = h('input', { type: 'text', 'aria-labelledby': 'nameLabel' });
    const email = h('input', { type: 'text', 'aria-labelledby': 'emailLabel' });
    const next = h('button', { id: 'guest_next-btn', type: 'button', disabled: true }, 'Next');
    enableWhenTyped(name, email, next);
    next.addEventListener('click', () => { st.name = name.value.trim(); interstitial(); });
    show('guest', h('div', { class: 'guest-form' },
      h('h2', { text: 'Enter your information' }),
      h('label', { id: 'nameLabel', text: 'Display name' }), name,
      h('label', { id: 'emailLabel', text: 'Email address' }), email, next));
    setState('prejoin');
  }
  function interstitial() {
    askDevices();
    const join = h('button', { id: 'interstitial_join_btn', type: 'button', title: 'Join meeting' }, 'Join meeting');
    join.addEventListener('click', afterJoin);
    show('preview', h('div', { class: 'interstitial' },
      h('h2', { text: st.name }),
      h('div', { class: 'control-bar' }, audioButton(), videoButton('MEETSIMPLE_INTERSTITIAL'), join)));
    if (scenario.post_join_modal) devicePrompt();
  }

  // -- preview: name, email, mic, camera, join ------------------------------------------------
  function preview() {
    askDevices();
    const name = h('input', { type: 'text', 'data-test': 'Name (required)', autocomplete: 'name', placeholder: 'Name (required)' });
    const email = h('input', { type: 'email', 'data-test': 'Email (required)', autocomplete: 'email', placeholder: 'Email (required)' });
    const join = btn('Join meeting', { 'data-test': 'join-button', variant: 'primary', disabled: true }, () => {
      if (join.hasAttribute('disabled')) return;
      st.name = name.value.trim();
      afterJoin();
    });
    enableWhenTyped(name, email, join);
    const mic = btn('Mute', { 'data-test': 'microphone-button', 'aria-label': 'Mute' }, () => {
      st.muted = !st.muted; mic.textContent = st.muted ? 'Unmute' : 'Mute'; mic.setAttribute('aria-label', mic.textContent);
    });
    const cam = btn('Stop video', { 'data-test': 'camera-button', 'aria-label': 'Stop video' }, () => {
      st.video = !st.video; cam.textContent = st.video ? 'Stop video' : 'Start video'; cam.setAttribute('aria-label', cam.textContent);
    });
    show('preview', h('div', { class: 'preview' },
      h('mdc-text', { tagname: 'h2', text: 'Enter your information' }),
      name, email, h('div', { class: 'control-bar' }, mic, cam, join)));
    if (scenario.post_join_modal) devicePrompt();
    setState('prejoin');
  }

  // The device prompt (MCR: "Continue without microphone and camera"): a modal over the
  // preview, which takes no clicks until it is answered.
  function devicePrompt() {
    const shade = h('div', { class: 'modal-shade', style: 'position:fixed;inset:0;background:rgba(0,0,0,.4);z-index:4' });
    const dialog = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true' },
      h('mdc-text', { tagname: 'h2', text: 'Use your microphone and camera?' }),
      h('p', { text: 'Allow access to join with audio and video.' }),
      btn('Continue without microphone and camera', {}, () => { shade.remove(); dialog.remove(); }));
    root.appendChild(shade);
    root.appendChild(dialog);
  }

  function afterJoin() {
    if (scenario.locked) {
      show('locked', h('div', { class: 'error-page' },
        h('mdc-text', { tagname: 'h2', text: 'The meeting is locked' }),
        h('p', { text: 'The meeting is locked. You can’t join at this time.' })));
      setState('locked');
      return;
    }
    if (scenario.manual_admission || scenario.waiting_room_s !== null || scenario.deny) lobby();
    else meeting();
  }

  function lobby() {
    show('lobby', h('div', { 'data-test': 'call_lobby_content' },
      h('mdc-text', { tagname: 'h2', text: 'Waiting for the host' }),
      h('p', { text: 'Please wait, the host will let you in soon.' })));
    setState('lobby');
    if (st.decision) {
      const d = st.decision; st.decision = null; setTimeout(() => decide(d), 300);
    } else if (!scenario.manual_admission) {
      later(scenario.waiting_room_s === null ? 1 : scenario.waiting_room_s, () => decide(scenario.deny ? 'deny' : 'admit'));
    }
  }

  function decide(kind) {
    if (st.view !== 'lobby') return;
    if (kind === 'admit') { meeting(); return; }
    show('denied', h('div', { class: 'error-page' },
      h('mdc-text', { tagname: 'h2', text: 'You can’t join the meeting' }),
      h('p', { text: 'The host denied your request to join the meeting.' })));
    setState('denied');
  }

  // -- the meeting ---------------------------------------------------------------------------
  function meeting() {
    st.people = scenario.participants.map((p, i) => ({ name: p.name, index: i, present: true }));
    const grid = h('div', { 'data-test': 'grid-layout', class: 'grid' });
    const panels = h('div', { class: 'panels' });
    const audioEl = h('audio', { autoplay: true });
    const mic = ent ? audioButton() : btn(st.muted ? 'Unmute' : 'Mute', { 'data-test': 'microphone-button', 'aria-label': st.muted ? 'Unmute' : 'Mute' }, () => {
      if (st.muted && scenario.unmute_refused) {
        // Replica invention (no source gives Webex's words): the host muted everyone.
        const toast = h('div', { role: 'alert', class: 'toast' }, 'The host has muted everyone. You can’t unmute yourself.');
        document.body.appendChild(toast);
        setTimeout(() => toast.remove(), 3000);
        return;
      }
      st.muted = !st.muted; mic.textContent = st.muted ? 'Unmute' : 'Mute'; mic.setAttribute('aria-label', mic.textContent);
    });
    const cam = ent ? videoButton('MENU_CONTROL_BAR') : btn(st.video ? 'Stop video' : 'Start video', { 'data-test': 'camera-button', 'aria-label': st.video ? 'Stop video' : 'Start video' }, () => {
      st.video = !st.video; cam.textContent = st.video ? 'Stop video' : 'Start video'; cam.setAttribute('aria-label', cam.textContent);
    });
    const roster = btn('Participants', { 'data-test': 'participants-toggle-button', 'aria-expanded': 'false' }, toggleRoster);
    const chat = ent ? h('button', { type: 'button', 'data-doi': 'CHAT:OPEN_CHAT_PANEL:MENU_CONTROL_BAR', onclick: toggleChat }, 'Chat')
      : btn('Chat', { 'data-test': 'in-meeting-chat-toggle-button', 'aria-expanded': 'false' }, toggleChat);
    const leave = btn('Leave', { 'data-test': 'leave-button', 'aria-label': 'Leave meeting' }, confirmLeave);
    ui = { grid, panels, audioEl, roster, chat };
    show('meeting', h('div', { class: 'meeting' },
      h('div', { class: 'layout' }, grid, panels),
      h('div', { class: 'control-bar' }, mic, cam, btn('Share', { 'data-test': 'mc-share' }),
        btn('Raise hand', { 'data-test': 'raise-hand-button' }), roster, chat, leave),
      audioEl));
    renderGrid();
    setState('joined');
    later(scenario.end_after_s, () => finish('ended'));
    later(scenario.remove_after_s, () => finish('removed'));
    later(scenario.everyone_leaves_after_s, () => {
      for (const p of st.people) p.present = false;
      peopleChanged();
    });
    for (const line of scenario.chat) later(line.at_s, () => addMessage(line.sender, line.text, false));
    const queued = st.pending; st.pending = [];
    for (const c of queued) meetingCommand(c);
    startAudio();
  }

  async function startAudio() {
    if (!st.people.length) return;
    audio = new window.MixedMeetingAudio(meetingId, st.people.length, scenario);
    try { await audio.start(); } catch (e) { console.error('[replica] audio failed', e); return; }
    if (st.view !== 'meeting') { audio.stop(); return; }
    audio.bindAudioElement(ui.audioEl);
    nextTurn();
  }

  function nextTurn() {
    clearTimeout(st.turnTimer);
    const present = st.people.filter((p) => p.present).map((p) => p.index);
    setSpeaker(window.ReplicaKit.nextSpeaker(present, st.speaking));
  }

  function setSpeaker(i) {
    clearTimeout(st.turnTimer);
    if (!ui) return;
    if (audio) audio.setSpeaker(i);
    const changed = i !== st.speaking;
    st.speaking = i;
    renderGrid();
    if (changed && i >= 0) report({ kind: 'speaker', name: st.people[i].name });
    if (i >= 0) st.turnTimer = setTimeout(nextTurn, scenario.speak_turn_s * 1000);
  }

  function tile(name, speaking) {
    if (ent) {
      return h('div', { class: 'videoitem-container-1Xa2d' + (speaking ? ' videoitem-in-speaking-3a-w-' : '') },
        h('div', { class: 'videoitem-full-name-content-TzQC4', text: name }));
    }
    return h('div', { class: 'participants-video-tile' },
      speaking ? h('div', { class: 'active-speaker-halo' }) : null,
      h('span', { 'data-test': 'participant-name', text: name }));
  }

  function renderGrid() {
    const tiles = st.people.filter((p) => p.present).map((p) => tile(p.name, p.index === st.speaking));
    tiles.push(tile(st.name, false));
    ui.grid.replaceChildren.apply(ui.grid, tiles);
    renderPanels();
  }

  function peopleChanged() {
    const sp = st.people[st.speaking];
    if (!sp || !sp.present) nextTurn(); else renderGrid();
  }

  function renderPanels() {
    const parts = [];
    if (st.rosterOpen) {
      const present = st.people.filter((p) => p.present);
      parts.push(h('div', { class: 'panel', 'data-test': 'participants-panel' },
        h('mdc-text', { tagname: 'h2', text: 'Participants (' + (present.length + 1) + ')' }),
        h('ul', { role: 'list' },
          h('li', { role: 'listitem' }, h('span', { 'data-test': 'participant-name', text: st.name }), h('span', { class: 'me', text: ' Me' })),
          ...present.map((p) => h('li', { role: 'listitem' }, h('span', { 'data-test': 'participant-name', text: p.name }))))));
    }
    if (st.chatOpen) {
      if (!ui.chatPanel) ui.chatPanel = chatPanel();
      parts.push(ui.chatPanel);
    }
    ui.panels.replaceChildren.apply(ui.panels, parts);
  }

  function toggleRoster() {
    st.rosterOpen = !st.rosterOpen;
    ui.roster.setAttribute('aria-expanded', String(st.rosterOpen));
    renderPanels();
  }

  function chatPanel() {
    if (ent) return textareaChatPanel();
    const list = h('div', { class: 'style-chat-box-3LLY3', role: 'log' });
    const editor = h('div', { class: 'ql-editor ql-blank', contenteditable: 'true', 'data-placeholder': 'Enter your message here', role: 'textbox' });
    editor.addEventListener('input', () => editor.classList.toggle('ql-blank', !editor.textContent.trim()));
    editor.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' || ev.shiftKey) return;
      ev.preventDefault();
      const text = editor.innerText.trim();
      if (!text) return;
      editor.replaceChildren(h('p', null, h('br')));
      editor.classList.add('ql-blank');
      addMessage(st.name, text, true);
      report({ kind: 'chat', sender: st.name, text: text });
    });
    ui.chatList = list;
    for (const m of st.messages) list.appendChild(messageNode(m));
    return h('div', { class: 'panel', id: 'chat-panel' },
      h('mdc-text', { tagname: 'h2', text: 'Chat' }), list,
      h('div', { id: 'quill-composer', class: 'ql-container' }, editor),
      btn('Send', { 'aria-label': 'Send message' }, () => editor.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }))));
  }

  // The enterprise panel: #chat-panel > div > textarea (L-wx; placeholder "Type your message
  // here", AS); Enter sends. Its list: the classic style-chat-* (the facts name no other).
  function textareaChatPanel() {
    const list = h('div', { class: 'style-chat-box-3LLY3', role: 'log' });
    const input = h('textarea', { placeholder: 'Type your message here', rows: 2 });
    input.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' || ev.shiftKey) return;
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      addMessage(st.name, text, true);
      report({ kind: 'chat', sender: st.name, text: text });
    });
    ui.chatList = list;
    for (const m of st.messages) list.appendChild(messageNode(m));
    return h('div', { class: 'panel', id: 'chat-panel' }, h('h2', { text: 'Chat' }), list, h('div', null, input));
  }

  function messageNode(m) {
    const time = new Date(m.at).toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
    return h('div', { class: 'style-chat-item-1xA9d' },
      h('h3', { class: 'style-chat-label-2kCWq', text: 'from ' + m.sender + ' to everyone  ' + time }),
      h('span', { class: 'style-chat-msg-3TLLe', text: m.text }));
  }

  function addMessage(sender, text, own) {
    const m = { sender, text, own, at: Date.now() };
    st.messages.push(m);
    if (ui && ui.chatList) ui.chatList.appendChild(messageNode(m));
  }

  function toggleChat() {
    st.chatOpen = !st.chatOpen;
    if (!ent) ui.chat.setAttribute('aria-expanded', String(st.chatOpen));
    renderPanels();
  }

  function confirmLeave() {
    const dialog = h('div', { class: 'dialog', role: 'dialog' },
      h('p', { text: 'Are you sure you want to leave the meeting?' }),
      btn('Cancel', {}, () => dialog.remove()),
      btn('Leave meeting', { variant: 'primary' }, () => { dialog.remove(); finish('left'); }));
    document.body.appendChild(dialog);
  }

  function finish(kind) {
    if (st.view !== 'meeting') return;
    for (const t of st.timers) clearTimeout(t);
    clearTimeout(st.turnTimer);
    if (audio) audio.stop();
    audio = null; ui = null;
    const text = { ended: 'The host ended the meeting.', removed: 'You’ve been removed from the meeting by the host.', left: 'You have left the meeting.' }[kind];
    show(kind, h('div', { class: 'style-end-message-2PkYs' }, h('mdc-text', { tagname: 'h2', text: text })));
    setState(kind);
  }

  // -- commands ------------------------------------------------------------------------------
  function meetingCommand(c) {
    if (c.kind === 'chat') addMessage(String(c.sender || 'Someone'), String(c.text || ''), false);
    else if (c.kind === 'end') finish('ended');
    else if (c.kind === 'remove') finish('removed');
    else if (c.kind === 'leave') {
      const p = st.people.find((q) => q.name === c.name);
      if (p) { p.present = false; peopleChanged(); }
    } else if (c.kind === 'toast') {
      const ms = c.ms !== undefined ? Number(c.ms) : c.seconds !== undefined ? Number(c.seconds) * 1000 : 2500;
      const toast = h('div', { role: 'alert', class: 'toast' }, String(c.text || 'Your network connection is unstable.'));
      document.body.appendChild(toast);
      setTimeout(() => toast.remove(), ms);
    } else if (c.kind === 'flicker') {
      // A reconnect: the meeting UI goes away for a moment and comes back.
      const ms = c.ms !== undefined ? Number(c.ms) : c.seconds !== undefined ? Number(c.seconds) * 1000 : 1500;
      root.style.display = 'none';
      setTimeout(() => { root.style.display = ''; }, ms);
    } else if (c.kind === 'speak') {
      const p = st.people.find((q) => q.name === c.name && q.present);
      if (p) setSpeaker(p.index);
    }
  }
  function apply(c) {
    if (c.kind === 'admit' || c.kind === 'deny') {
      if (st.view === 'lobby') decide(c.kind); else if (st.view !== 'meeting') st.decision = c.kind;
      return;
    }
    if (st.view === 'meeting') meetingCommand(c); else if (!['ended', 'removed', 'left'].includes(st.view)) st.pending.push(c);
  }
  async function boot() {
    try {
      const r = await fetch(base + '/scenario', { cache: 'no-store' });
      if (r.ok) scenario = await r.json();
    } catch (e) {}
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (!scenario || scenario.not_found) {
      show('error', h('div', { class: 'error-page' }, h('mdc-text', { tagname: 'h2', text: 'Invalid meeting' }), h('p', { text: 'Meeting not found.' })));
      return;
    }
    window.ReplicaKit.pollCommands(base, apply);
    ent = !!scenario.thin_iframe;
    if (scenario.passcode) passwordView(null); else if (ent) guestForm(); else preview();
  }
  boot();
})();
