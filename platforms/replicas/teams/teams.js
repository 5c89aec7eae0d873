/*
 * Microsoft Teams guest ("light meetings") replica — for vp's tests and `vp demo`.
 *
 * Reproduces what open-source bots report about the real client (../shared/facts/web-clients.md §2,
 * lma.md §2 Teams): the URL forms and the anonymous redirect chain (short link / meetup-join →
 * launcher with "Continue on this browser" → light-meetings; /v2/?meetingjoin=true#/… → silent SSO
 * probe with an empty DOM → launcher → light-meetings), the several-second empty DOM, the
 * permission gate, the pre-join form whose server-rendered markup sits under a hydration shroud
 * (text typed before hydration is lost), data-tid / aria attributes and texts (with ’), the
 * post-Join "Continue without audio or video" modal with the Join button still behind it, the
 * lobby (Join button present but disabled), denial, captcha, sign-in redirect, the calling screen
 * (toolbar, stage tiles with voice-level outlines, People badge), the CKEditor composer whose model
 * ignores execCommand, a virtualised chat list, toasts, and the removed / ended screens.
 *
 * Audio: each participant's tone WAV is decoded in a "server" AudioContext and gated by a
 * per-participant gain (open only during that participant's turn) into (a) one MIX destination and
 * (b) a per-participant destination. All go through a loopback RTCPeerConnection pair in this page:
 * the receiving side gets the mix on a stream whose id is munged (SDP msid) to "mainAudio", plus
 * the redundant per-participant tracks, exactly like Teams' server mix. The client plays only the
 * mainAudio stream, through WebAudio (a detached muted <audio> keeps Chromium's remote track
 * flowing); there are no per-participant <audio> elements in the DOM.
 *
 * Test plumbing (not part of the real client): GET /__replica/m/<id>/scenario, poll
 * /__replica/m/<id>/commands, POST /__replica/m/<id>/report (see platforms/replicas/server.py).
 * Extra command kinds understood here: toast {text, seconds}, flicker {seconds} (the calling
 * toolbar and stage vanish briefly, as during a re-render).
 */
(() => {
  'use strict';

  const app = document.getElementById('app');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const uuid = () =>
    crypto.randomUUID
      ? crypto.randomUUID()
      : 'xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx'.replace(/x/g, () => ((Math.random() * 16) | 0).toString(16));
  const CLIENT_VERSION = '26081412345';

  // Timing quirks (milliseconds).
  const T = {
    ssoProbe: 1200, // /v2/: silent SSO probe (fails AADSTS50058), DOM empty
    launcherBlank: 600, // launcher before it renders or redirects
    lightBlank: 2000, // light-meetings: DOM empty while the bundle loads
    gateMin: 600, // permission gate on screen at least this long
    hydrate: 1500, // pre-join shroud until hydration (typed text before it is lost)
    joinToLobby: 400,
    commandPoll: 300,
  };

  // ---- tiny DOM helper ----------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const show = (...nodes) => app.replaceChildren(...nodes);

  // ---- meeting target parsing ---------------------------------------------------------------
  // A "target" is the meeting part of a URL: "/meet/<id>?p=…" or "/l/meetup-join/19%3ameeting_<id>%40thread.v2/0?context=…".
  function parseTarget(target) {
    const qi = target.indexOf('?');
    const p = qi >= 0 ? target.slice(0, qi) : target;
    const params = new URLSearchParams(qi >= 0 ? target.slice(qi + 1) : '');
    let m = p.match(/^\/meet\/([A-Za-z0-9_-]+)\/?$/);
    if (m) return { kind: 'meet', id: m[1], passcode: params.get('p'), params };
    let decoded = p;
    try {
      decoded = decodeURIComponent(p);
    } catch (_) {}
    m = decoded.match(/^\/l\/meetup-join\/19:meeting_([A-Za-z0-9_-]+)@thread\.v2\/(\d+)\/?$/);
    if (m) {
      let ctx = {};
      try {
        ctx = JSON.parse(params.get('context') || '{}');
      } catch (_) {}
      return { kind: 'meetup', id: m[1], messageId: m[2], passcode: params.get('p'), ctx, params };
    }
    return null;
  }

  function targetOf(t) {
    // The canonical fragment target for a parsed meeting.
    if (t.kind === 'meet') {
      const q = new URLSearchParams();
      if (t.passcode !== null && t.passcode !== undefined) q.set('p', t.passcode);
      q.set('anon', 'true');
      return `/meet/${t.id}?${q}`;
    }
    const q = new URLSearchParams();
    q.set('context', JSON.stringify(t.ctx || {}));
    if (t.passcode) q.set('p', t.passcode);
    q.set('anon', 'true');
    return `/l/meetup-join/19%3ameeting_${t.id}%40thread.v2/${t.messageId || 0}?${q}`;
  }

  function coordsOf(t) {
    const obj =
      t.kind === 'meet'
        ? { meetingCode: t.id, passcode: t.passcode || null }
        : {
            conversationId: `19:meeting_${t.id}@thread.v2`,
            tenantId: (t.ctx && t.ctx.Tid) || null,
            messageId: t.messageId || '0',
            organizerId: (t.ctx && t.ctx.Oid) || null,
          };
    return btoa(unescape(encodeURIComponent(JSON.stringify(obj))));
  }

  function targetFromCoords(b64) {
    try {
      const o = JSON.parse(decodeURIComponent(escape(atob(b64))));
      if (o.meetingCode) return { kind: 'meet', id: String(o.meetingCode), passcode: o.passcode };
      const m = String(o.conversationId || '').match(/^19:meeting_([A-Za-z0-9_-]+)@thread\.v2$/);
      if (m) {
        return {
          kind: 'meetup',
          id: m[1],
          messageId: o.messageId || '0',
          ctx: { Tid: o.tenantId, Oid: o.organizerId },
          passcode: o.passcode || null,
        };
      }
    } catch (_) {}
    return null;
  }

  function launcherUrl(t, suppressPrompt) {
    const q = new URLSearchParams();
    q.set('url', '/_#' + targetOf(t));
    q.set('type', t.kind === 'meet' ? 'meet' : 'meetup-join');
    q.set('deeplinkId', uuid());
    q.set('directDl', 'true');
    q.set('msLaunch', 'true');
    q.set('enableMobilePage', 'true');
    if (suppressPrompt) q.set('suppressPrompt', 'true');
    return '/dl/launcher/launcher.html?' + q;
  }

  function lightUrl(t) {
    const q = new URLSearchParams();
    q.set('agent', 'web');
    q.set('version', CLIENT_VERSION);
    q.set('coords', coordsOf(t));
    q.set('deeplinkId', uuid());
    q.set('correlationId', uuid());
    q.set('lightExperience', 'true');
    q.set('laentry', 'hybrid_launcher');
    return '/light-meetings/launch?' + q;
  }

  // ---- routing ------------------------------------------------------------------------------
  const path = location.pathname;
  const query = new URLSearchParams(location.search);

  function route() {
    if (/^\/meet\//.test(path) || /^\/l\/meetup-join\//.test(path)) return landing();
    if (path === '/dl/launcher/launcher.html') return launcher();
    if (/^\/v2\/?$/.test(path) || path === '/_') return webClient();
    if (/^\/light-meetings\/launch\/?$/.test(path)) return lightMeetings();
    if (path.startsWith('/common/oauth2/')) return signIn();
    return notFoundPage();
  }

  // Short link / meetup-join link: the server answers with the launcher.
  function landing() {
    const t = parseTarget(path + location.search);
    if (!t) return notFoundPage();
    location.replace(launcherUrl(t, false));
  }

  // /v2/?meetingjoin=true#/meet/<id>?p=…&anon=true — the SSO probe fails silently for a guest
  // (AADSTS50058), the DOM stays empty, then the launcher takes over without a prompt.
  async function webClient() {
    const frag = location.hash.replace(/^#/, '');
    const t = parseTarget(frag);
    await sleep(T.ssoProbe);
    if (!t) return notFoundPage();
    location.replace(launcherUrl(t, true));
  }

  async function launcher() {
    await sleep(T.launcherBlank);
    let raw = query.get('url') || '';
    // url=/_#/meet/… (the fragment may also have escaped into the launcher URL's own fragment)
    if (!raw.includes('#') && location.hash) raw += location.hash;
    const t = parseTarget(raw.replace(/^\/_#?/, '').replace(/^#/, ''));
    if (!t) return notFoundPage();
    if (query.get('suppressPrompt') === 'true') {
      location.replace(lightUrl(t));
      return;
    }
    show(
      h(
        'div',
        { class: 'launcher', role: 'main' },
        h('h1', { text: 'How do you want to join your Teams meeting?' }),
        h('button', {
          type: 'button',
          'data-tid': 'joinOnApp',
          class: 'fui-Button',
          text: 'Join on the Teams app',
          onclick: () => {}, // the protocol handler: nothing happens headless
        }),
        h('button', {
          type: 'button',
          'data-tid': 'joinOnWeb',
          'aria-label': 'Join meeting from this browser',
          class: 'fui-Button fui-Button--primary',
          text: 'Continue on this browser',
          onclick: () => location.assign(lightUrl(t)),
        }),
        h('p', { text: 'Don’t have the Teams app? Download it now.' }),
      ),
    );
  }

  function notFoundPage() {
    show(
      h(
        'div',
        { class: 'error-screen', role: 'main', 'data-tid': 'meeting-url-error' },
        h('h1', { text: 'We can’t find this meeting' }),
        h('p', { text: 'Looks like the meeting URL is incorrect. Please check the URL and try again.' }),
      ),
    );
  }

  function signIn() {
    document.title = 'Sign in to your account';
    show(
      h(
        'div',
        { class: 'login-page', role: 'main' },
        h('div', { id: 'loginHeader', role: 'heading', 'aria-level': '1' }, h('div', { text: 'Sign in' })),
        h('input', {
          type: 'email',
          name: 'loginfmt',
          id: 'i0116',
          placeholder: 'Email, phone, or Skype',
          'aria-label': 'Enter your email, phone, or Skype.',
        }),
        h('input', { type: 'submit', id: 'idSIButton9', value: 'Next' }),
      ),
    );
  }

  // ---- the light-meetings client ------------------------------------------------------------
  let M = null; // meeting state
  let scenario = null;
  const state = {
    phase: 'loading', // loading, gate, prejoin, lobby, joined, left, ended, removed, denied, captcha…
    name: '',
    mic: true,
    camera: true,
    audioMode: 'computer',
    joinedAt: null,
    lobbyDecision: null, // 'admit' | 'deny' once a command arrived
  };

  window.__replicaUplink = { micOn: () => state.phase === 'joined' && !!state.mic, report: (o) => report(o) };
  function report(obj) {
    if (!M) return;
    fetch(`/__replica/m/${encodeURIComponent(M.id)}/report`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(obj),
      keepalive: true,
    }).catch(() => {});
  }
  function setPhase(phase) {
    state.phase = phase;
    report({ kind: 'state', state: phase });
  }

  async function lightMeetings() {
    const t = targetFromCoords(query.get('coords') || '');
    // The bundle loads: nothing in the DOM for a while.
    const [sc] = await Promise.all([
      t
        ? fetch(`/__replica/m/${encodeURIComponent(t.id)}/scenario`)
            .then((r) => (r.ok ? r.json() : null))
            .catch(() => null)
        : Promise.resolve(null),
      sleep(T.lightBlank),
    ]);
    if (!t || !sc) return notFoundPage();
    M = t;
    scenario = sc;
    pollCommands();
    if (sc.not_found) {
      setPhase('not_found');
      return notFoundPage();
    }
    if (sc.login_required) {
      setPhase('login_required');
      const q = new URLSearchParams({
        client_id: '5e3ce6c0-2b1f-4285-8d4b-75ee78787346',
        response_type: 'code',
        redirect_uri: location.origin + '/v2',
        scope: 'openid profile',
        prompt: 'select_account',
        state: uuid(),
      });
      location.replace('/common/oauth2/v2.0/authorize?' + q);
      return;
    }
    if (sc.passcode) {
      if (t.passcode === null || t.passcode === undefined || t.passcode === '') return passcodeForm();
      if (t.passcode !== sc.passcode) return wrongPasscode();
    }
    await permissionGate();
    prejoin();
  }

  function wrongPasscode() {
    setPhase('wrong_passcode');
    show(
      h(
        'div',
        { class: 'error-screen', role: 'main' },
        h('h1', { text: 'We couldn’t find a meeting matching this ID and passcode.' }),
        h('p', { text: 'Check the meeting ID and passcode and try again.' }),
      ),
    );
  }

  function passcodeForm() {
    setPhase('passcode');
    const err = h('div', { class: 'prejoin-error', role: 'alert' });
    const input = h('input', {
      type: 'text',
      class: 'prejoin-name',
      placeholder: 'Type a meeting passcode',
      'aria-label': 'Meeting passcode',
      autocomplete: 'off',
    });
    const submit = async () => {
      const value = input.value.trim();
      if (!value) return;
      if (value !== scenario.passcode) {
        report({ kind: 'state', state: 'wrong_passcode' });
        err.textContent = 'We couldn’t find a meeting matching this ID and passcode.';
        return;
      }
      M.passcode = value;
      await permissionGate();
      prejoin();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') submit();
    });
    show(
      h(
        'div',
        { class: 'light-prejoin', role: 'main' },
        h('h1', { text: 'Join a meeting with an ID' }),
        h('input', { type: 'text', class: 'prejoin-name', value: M.id, 'aria-label': 'Meeting ID', readonly: true }),
        input,
        err,
        h(
          'div',
          { class: 'prejoin-actions' },
          h('button', { type: 'button', class: 'fui-Button fui-Button--primary', text: 'Join meeting', onclick: submit }),
        ),
      ),
    );
  }

  async function permissionGate() {
    state.phase = 'gate';
    show(h('div', { class: 'permission-gate', role: 'main' }, h('p', { text: 'Select Allow to let Microsoft Teams use your mic and camera' })));
    const started = Date.now();
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      state.previewStream = s;
    } catch (_) {
      state.mic = false;
      state.camera = false;
    }
    const left = T.gateMin - (Date.now() - started);
    if (left > 0) await sleep(left);
  }

  // -- pre-join ---------------------------------------------------------------------------------
  let pj = null; // current pre-join elements

  function switchEl(tid, on, labelOn, labelOff, text) {
    const input = h('input', {
      type: 'checkbox',
      role: 'switch',
      class: 'fui-Switch__input',
      'data-tid': tid,
      'aria-label': on ? labelOn : labelOff,
      'aria-checked': on ? 'true' : 'false',
      checked: on,
    });
    const wrap = h('div', { class: 'fui-Switch' }, input, h('div', { class: 'fui-Switch__indicator', 'aria-hidden': 'true' }), h('label', { text }));
    return { wrap, input, labelOn, labelOff };
  }

  function renderPrejoin(hydrated) {
    const video = switchEl('toggle-video', state.camera, 'Turn camera off', 'Turn camera on', 'Camera');
    const mic = switchEl('toggle-mute', state.mic, 'Mute mic', 'Unmute mic', 'Mic');
    const name = h('input', {
      type: 'text',
      class: 'prejoin-name',
      'data-tid': 'prejoin-display-name-input',
      placeholder: 'Type your name',
      'aria-label': 'Type your name',
      maxlength: '100',
      autocomplete: 'off',
    });
    const join = h('button', {
      type: 'button',
      class: 'fui-Button fui-Button--primary',
      'data-tid': 'prejoin-join-button',
      text: 'Join now',
      disabled: true,
    });
    const cancel = h('button', { type: 'button', class: 'fui-Button', 'data-tid': 'prejoin-cancel-button', text: 'Cancel' });
    const radios = h(
      'div',
      { class: 'prejoin-audio', role: 'radiogroup', 'aria-label': 'Audio options' },
      h('label', {}, h('input', { type: 'radio', name: 'audio-option', value: 'computer', checked: state.audioMode === 'computer', 'aria-label': 'Computer audio' }), ' Computer audio'),
      h('label', {}, h('input', { type: 'radio', name: 'audio-option', value: 'none', checked: state.audioMode === 'none', 'aria-label': 'Don’t use audio' }), ' Don’t use audio'),
    );
    const speaker = h('button', { type: 'button', class: 'fui-Button', 'data-tid': 'toggle-speaker', 'aria-label': 'Turn speaker off', text: 'Speaker' });
    const lobby = h('div', { class: 'prejoin-lobby', role: 'status', 'aria-live': 'polite' });
    const root = h(
      'div',
      { class: 'light-prejoin', role: 'main', 'data-tid': 'light-prejoin' },
      h('h1', { text: 'Choose your video and audio options' }),
      h('div', { class: 'prejoin-preview', 'data-tid': 'prejoin-video-preview' }, state.camera ? 'Camera is on' : 'Your camera is turned off'),
      h('div', { class: 'prejoin-controls' }, video.wrap, mic.wrap, speaker),
      radios,
      name,
      lobby,
      h('div', { class: 'prejoin-actions' }, cancel, join),
    );
    pj = { root, video, mic, name, join, cancel, radios, speaker, lobby, hydrated };
    if (!hydrated) return root;

    // Client-side behaviour (after hydration).
    const flip = (sw, key) => {
      sw.input.addEventListener('change', () => {
        state[key] = sw.input.checked;
        sw.input.setAttribute('aria-checked', sw.input.checked ? 'true' : 'false');
        sw.input.setAttribute('aria-label', sw.input.checked ? sw.labelOn : sw.labelOff);
        if (key === 'camera') pj.root.querySelector('[data-tid="prejoin-video-preview"]').textContent = sw.input.checked ? 'Camera is on' : 'Your camera is turned off';
      });
    };
    flip(video, 'camera');
    flip(mic, 'mic');
    name.addEventListener('input', () => {
      state.name = name.value;
      join.disabled = !state.name.trim() || state.joinClicked;
    });
    radios.addEventListener('change', (e) => {
      if (e.target && e.target.name === 'audio-option') state.audioMode = e.target.value;
    });
    speaker.addEventListener('click', () => {
      state.speakerOff = !state.speakerOff;
      speaker.setAttribute('aria-label', state.speakerOff ? 'Turn speaker on' : 'Turn speaker off');
    });
    join.addEventListener('click', () => {
      if (join.disabled) return;
      onJoinClicked();
    });
    name.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !join.disabled) onJoinClicked();
    });
    return root;
  }

  async function prejoin() {
    setPhase('prejoin');
    // Server-rendered markup first, under the hydration shroud; no handlers yet.
    const ssr = renderPrejoin(false);
    const shroud = h('div', { class: 'prejoin-shroud', 'aria-hidden': 'true' });
    show(ssr, shroud);
    await sleep(T.hydrate);
    // Hydration: the client re-renders the form from its own state (empty name).
    state.name = '';
    const live = renderPrejoin(true);
    show(live);
  }

  async function onJoinClicked() {
    state.joinClicked = true;
    pj.join.disabled = true;
    report({ kind: 'media', mic: !!state.mic, camera: !!state.camera, name: state.name.trim() });
    if (scenario.post_join_modal) {
      const ok = await avModal();
      if (!ok) return;
    }
    if (scenario.captcha) return captcha();
    const lobbyWanted = scenario.waiting_room_s !== null || scenario.manual_admission || scenario.deny;
    if (lobbyWanted) return lobbyFlow();
    admitted();
  }

  function avModal() {
    return new Promise((resolve) => {
      const close = (v) => {
        backdrop.remove();
        resolve(v);
      };
      const backdrop = h(
        'div',
        { class: 'fui-DialogSurface__backdrop' },
        h(
          'div',
          { class: 'fui-DialogSurface', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'av-title' },
          h('h2', { class: 'fui-DialogTitle', id: 'av-title', text: 'Are you sure you don’t want audio or video?' }),
          h('p', { text: 'Others in the meeting won’t be able to see or hear you.' }),
          h(
            'div',
            { class: 'fui-DialogActions' },
            h('button', { type: 'button', class: 'fui-Button', text: 'Go back', onclick: () => { state.joinClicked = false; pj.join.disabled = !state.name.trim(); close(false); } }),
            h('button', { type: 'button', class: 'fui-Button fui-Button--primary', text: 'Continue without audio or video', onclick: () => close(true) }),
          ),
        ),
      );
      document.body.append(backdrop);
    });
  }

  function captcha() {
    setPhase('captcha');
    show(
      h(
        'div',
        { class: 'hip-challenge', role: 'main' },
        h('h1', { text: 'Verify you’re a real person' }),
        h('img', { 'data-tid': 'HIP-Captcha-Image', alt: 'Captcha image', width: '200', height: '60', src: 'data:image/gif;base64,R0lGODlhAQABAAAAACw=' }),
        h('input', { type: 'text', 'aria-label': 'Enter the characters you see' }),
        h('button', { type: 'button', class: 'fui-Button fui-Button--primary', text: 'Submit' }),
      ),
    );
  }

  async function lobbyFlow() {
    await sleep(T.joinToLobby);
    setPhase('lobby');
    pj.lobby.replaceChildren(h('p', { text: 'Someone will let you in soon' }), h('p', { text: `Hi ${state.name.trim()}, thanks for your patience.` }));
    pj.join.disabled = true; // still present: the lobby keeps the Join button, disabled
    const started = Date.now();
    const waitMs = scenario.waiting_room_s !== null ? scenario.waiting_room_s * 1000 : scenario.deny ? 1000 : null;
    while (state.phase === 'lobby') {
      const decision = state.lobbyDecision;
      if (decision === 'admit') return admitted();
      if (decision === 'deny') return denied();
      if (!scenario.manual_admission && waitMs !== null && Date.now() - started >= waitMs) {
        return scenario.deny ? denied() : admitted();
      }
      await sleep(100);
    }
  }

  function retryScreen(title, subtitle, withRejoin) {
    return h(
      'div',
      { class: 'calling-retry-screen', role: 'main', 'data-tid': 'calling-retry-screen' },
      h('h2', { id: 'calling-retry-screen-title', text: title }),
      h('div', { id: 'calling-retry-screen-subtitle', text: subtitle }),
      withRejoin ? h('button', { type: 'button', class: 'fui-Button fui-Button--primary', 'data-tid': 'calling-retry-rejoinbutton', text: 'Rejoin' }) : null,
      h('button', { type: 'button', class: 'fui-Button', 'data-tid': 'calling-retry-cancelbutton', text: 'Dismiss' }),
    );
  }

  function denied() {
    setPhase('denied');
    show(retryScreen('Sorry, but you were denied access to the meeting.', 'Your request to join was declined.', false));
  }

  // -- in the meeting ---------------------------------------------------------------------------
  const people = []; // {name, index, present}
  const ui = {};
  let chatSeq = 0;
  const chatItems = []; // rendered by renderChat (virtualised)
  const VISIBLE_CHAT = 8;

  function admitted() {
    state.phase = 'joined';
    state.joinedAt = Date.now();
    scenario.participants.forEach((p, i) => people.push({ name: p.name, symbols: p.symbols, index: i, present: true }));
    buildCallingScreen();
    setPhase('joined');
    startAudio().catch((e) => console.warn('replica audio failed', e));
    startTurns();
    const at = (s, fn) => (s !== null && s !== undefined ? setTimeout(() => state.phase === 'joined' && fn(), s * 1000) : null);
    at(scenario.end_after_s, hostEnds);
    at(scenario.remove_after_s, removed);
    at(scenario.everyone_leaves_after_s, () => people.forEach((p) => participantLeaves(p.name)));
    for (const line of scenario.chat || []) at(line.at_s, () => incomingChat(line.sender, line.text));
    for (const cmd of pendingCommands.splice(0)) applyMeetingCommand(cmd);
  }

  function buildCallingScreen() {
    const badge = h('span', { class: 'toolbar-badge', 'data-tid': 'toolbar-item-badge' });
    ui.badge = badge;
    ui.chatButton = h('button', {
      type: 'button',
      id: 'chat-button',
      'data-tid': 'chat-button',
      'aria-label': 'Show conversation',
      title: 'Show conversation',
      'aria-pressed': 'false',
      text: 'Chat',
      onclick: () => togglePanel('chat'),
    });
    ui.rosterButton = h(
      'button',
      { type: 'button', id: 'roster-button', 'aria-label': 'People', title: 'People', 'aria-pressed': 'false', onclick: () => togglePanel('roster') },
      'People',
      badge,
    );
    ui.micButton = h('button', { type: 'button', id: 'microphone-button', 'aria-label': state.mic ? 'Mute mic' : 'Unmute mic', text: 'Mic' });
    ui.micButton.addEventListener('click', () => {
      state.mic = !state.mic;
      ui.micButton.setAttribute('aria-label', state.mic ? 'Mute mic' : 'Unmute mic');
      report({ kind: 'media', mic: state.mic, camera: state.camera });
    });
    ui.videoButton = h('button', { type: 'button', id: 'video-button', 'aria-label': state.camera ? 'Turn camera off' : 'Turn camera on', text: 'Camera' });
    ui.hangup = h('button', {
      type: 'button',
      id: 'hangup-button',
      'data-tid': 'hangup-main-btn',
      'data-inp': 'hangup-button',
      'aria-label': 'Leave (Ctrl+Shift+H)',
      title: 'Leave (Ctrl+Shift+H)',
      text: 'Leave',
      onclick: leaveDialog,
    });
    ui.toolbar = h(
      'div',
      { class: 'calling-toolbar', role: 'toolbar', 'data-tid': 'calling-toolbar', 'aria-label': 'Meeting controls' },
      ui.chatButton,
      ui.rosterButton,
      h('button', { type: 'button', id: 'callingButtons-showMoreBtn', 'aria-label': 'More', text: '…' }),
      ui.videoButton,
      ui.micButton,
      ui.hangup,
    );
    ui.stageLayout = h('div', { class: 'stage-layout', 'data-tid': 'stage-layout' });
    ui.stage = h('div', { class: 'stage', 'data-tid': 'modern-stage-wrapper' }, ui.stageLayout);
    // chat panel
    ui.chatList = h('div', { class: 'chat-pane-list', 'data-tid': 'chat-pane-list', role: 'list', 'aria-label': 'Chat messages' });
    ui.editor = buildEditor();
    ui.send = h('button', {
      type: 'button',
      'data-tid': 'newMessageCommands-send',
      'aria-label': 'Send',
      title: 'Send (Ctrl+Enter)',
      class: 'fui-Button',
      text: 'Send',
      onclick: () => submitMessage(),
    });
    ui.chatPanel = h(
      'div',
      { class: 'side-panel', 'data-tid': 'chat-pane', role: 'complementary', 'aria-label': 'Meeting chat', hidden: true },
      h('div', { 'data-tid': 'message-pane-list-runway', class: 'chat-runway' }, ui.chatList),
      h('div', { class: 'chat-composer' }, ui.editor.wrapper, ui.send),
    );
    ui.rosterTree = h('div', { class: 'roster-tree', role: 'tree', 'aria-label': 'Attendees' });
    ui.rosterPanel = h('div', { class: 'side-panel', 'data-tid': 'call-roster', role: 'complementary', 'aria-label': 'People', hidden: true }, h('h3', { text: 'In this meeting' }), ui.rosterTree);
    ui.toaster = h('div', { class: 'toaster', 'aria-live': 'polite' });
    ui.screen = h(
      'div',
      { class: 'calling-screen', 'data-tid': 'callingScreen' },
      ui.toolbar,
      h('div', { class: 'calling-body' }, ui.stage, ui.chatPanel, ui.rosterPanel),
      ui.toaster,
    );
    show(ui.screen);
    renderPeople();
    document.addEventListener('keydown', onGlobalKey);
  }

  function onGlobalKey(e) {
    if (state.phase !== 'joined') return;
    if (e.ctrlKey && e.shiftKey && (e.key === 'M' || e.key === 'm')) ui.micButton.click();
    if (e.ctrlKey && e.shiftKey && (e.key === 'H' || e.key === 'h')) leaveDialog();
  }

  function togglePanel(which) {
    const chatOpen = !ui.chatPanel.hidden;
    const rosterOpen = !ui.rosterPanel.hidden;
    if (which === 'chat') {
      ui.chatPanel.hidden = chatOpen;
      if (!chatOpen) ui.rosterPanel.hidden = true;
    } else {
      ui.rosterPanel.hidden = rosterOpen;
      if (!rosterOpen) ui.chatPanel.hidden = true;
    }
    const c = !ui.chatPanel.hidden;
    ui.chatButton.setAttribute('aria-pressed', c ? 'true' : 'false');
    ui.chatButton.setAttribute('aria-label', c ? 'Hide conversation' : 'Show conversation');
    ui.chatButton.setAttribute('title', c ? 'Hide conversation' : 'Show conversation');
    ui.rosterButton.setAttribute('aria-pressed', ui.rosterPanel.hidden ? 'false' : 'true');
    // The list only exists in the DOM while the panel is open.
    renderChat();
  }

  function tile(name, speaking) {
    const outline = h('div', { class: 'voice-level-outline' + (speaking ? ' vdi-frame-occlusion' : ''), 'data-tid': 'voice-level-stream-outline' });
    return h(
      'div',
      { role: 'menuitem', class: 'video-tile-container', 'aria-label': name },
      h(
        'div',
        { class: 'video-tile', 'data-stream-type': 'Video', 'data-tid': name },
        outline,
        h('div', { class: 'participant-nametag', 'data-tid': 'participant-info-nametag', text: name }),
      ),
    );
  }

  function renderPeople() {
    if (!ui.stageLayout) return;
    const present = people.filter((p) => p.present);
    ui.stageLayout.replaceChildren(...present.map((p) => tile(p.name, p.name === turn.current)), tile(state.name.trim(), false));
    ui.badge.textContent = String(present.length + 1);
    ui.rosterTree.replaceChildren(
      ...[{ name: state.name.trim() + ' (Guest)' }, ...present].map((p) =>
        h('div', { role: 'treeitem', 'data-cid': 'roster-participant', 'aria-label': p.name }, h('span', { title: p.name, text: p.name })),
      ),
    );
  }

  function participantLeaves(name) {
    const p = people.find((x) => x.name === name && x.present);
    if (!p) return;
    p.present = false;
    if (turn.current === name) nextTurn();
    renderPeople();
  }

  // -- speaking turns -----------------------------------------------------------------------------
  const turn = { current: null, timer: null, order: 0 };

  function startTurns() {
    nextTurn(true);
  }

  function scheduleTurn() {
    clearTimeout(turn.timer);
    turn.timer = setTimeout(() => nextTurn(), Math.max(0.2, scenario.speak_turn_s) * 1000);
  }

  function nextTurn(first) {
    const present = people.filter((p) => p.present);
    if (!present.length) {
      setSpeaker(null);
      return;
    }
    let idx = 0;
    if (!first && turn.current) {
      const cur = present.findIndex((p) => p.name === turn.current);
      idx = cur >= 0 ? (cur + 1) % present.length : 0;
    }
    setSpeaker(present[idx].name);
    scheduleTurn();
  }

  function speakNow(name) {
    const p = people.find((x) => x.name === name && x.present);
    if (!p) return;
    setSpeaker(name);
    scheduleTurn();
  }

  function setSpeaker(name) {
    const changed = turn.current !== name;
    turn.current = name;
    audio.speak(name);
    if (ui.stageLayout) {
      for (const t of ui.stageLayout.querySelectorAll('[data-stream-type][data-tid]')) {
        const o = t.querySelector('[data-tid="voice-level-stream-outline"]');
        if (o) o.classList.toggle('vdi-frame-occlusion', name !== null && t.getAttribute('data-tid') === name);
      }
    }
    if (changed && name) report({ kind: 'speaker', name });
  }

  // -- audio -------------------------------------------------------------------------------------
  const audio = {
    ready: false,
    voices: new Map(), // name -> {buf, gain, src}
    ctx: null,
    speaking: null,
    speak(name) {
      this.speaking = name;
      if (!this.ready) return;
      const now = this.ctx.currentTime;
      for (const [n, v] of this.voices) {
        if (n === name) {
          if (v.src) {
            try {
              v.src.stop();
            } catch (_) {}
          }
          const src = this.ctx.createBufferSource();
          src.buffer = v.buf;
          src.loop = true;
          src.connect(v.gain);
          src.start(now);
          v.src = src;
          v.gain.gain.setValueAtTime(1, now);
        } else {
          v.gain.gain.setValueAtTime(0, now);
          if (v.src) {
            try {
              v.src.stop(now + 0.05);
            } catch (_) {}
            v.src = null;
          }
        }
      }
    },
    stop() {
      this.ready = false;
      for (const v of this.voices.values()) {
        if (v.src) {
          try {
            v.src.stop();
          } catch (_) {}
        }
      }
      for (const pc of this.pcs || []) {
        try {
          pc.close();
        } catch (_) {}
      }
      if (this.player) {
        try {
          this.player.close();
        } catch (_) {}
      }
      if (this.ctx) {
        try {
          this.ctx.close();
        } catch (_) {}
      }
    },
  };

  function iceComplete(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 3000);
    });
  }

  async function startAudio() {
    if (!people.length) return;
    // The "server": decodes each participant's voice and mixes it, like Teams' media processor.
    const ctx = new AudioContext({ sampleRate: 48000 });
    audio.ctx = ctx;
    const mix = ctx.createMediaStreamDestination();
    const singles = [];
    for (const p of people) {
      const r = await fetch(`/__replica/m/${encodeURIComponent(M.id)}/audio/${p.index}.wav`);
      const buf = await ctx.decodeAudioData(await r.arrayBuffer());
      const gain = ctx.createGain();
      gain.gain.value = 0;
      const own = ctx.createMediaStreamDestination();
      gain.connect(mix);
      gain.connect(own);
      audio.voices.set(p.name, { buf, gain, src: null });
      singles.push(own);
    }
    // Server → client over WebRTC (Opus), in this page.
    const server = new RTCPeerConnection();
    const client = new RTCPeerConnection();
    audio.pcs = [server, client];
    server.addTrack(mix.stream.getAudioTracks()[0], mix.stream);
    for (const own of singles) server.addTrack(own.stream.getAudioTracks()[0], own.stream);
    const cameras = window.ReplicaCameras ? window.ReplicaCameras.fromScenario(scenario) : null;
    if (cameras) window.ReplicaCameras.add(server, client, cameras);
    client.addEventListener('track', onClientTrack);
    await server.setLocalDescription(await server.createOffer());
    await iceComplete(server);
    let sdp = server.localDescription.sdp.split(mix.stream.id).join('mainAudio');
    singles.forEach((own, i) => {
      sdp = sdp.split(own.stream.id).join(`participantAudio-${i}`);
    });
    await client.setRemoteDescription({ type: 'offer', sdp });
    await client.setLocalDescription(await client.createAnswer());
    await iceComplete(client);
    await server.setRemoteDescription(client.localDescription);
    audio.ready = true;
    if (state.phase === 'joined') audio.speak(audio.speaking);
    else audio.stop();
  }

  function onClientTrack(ev) {
    const stream = ev.streams && ev.streams[0];
    if (!stream || !stream.id.includes('mainAudio')) return; // the redundant per-participant tracks are not played
    if (state.audioMode === 'none' || state.speakerOff) return;
    // Teams plays the server mix through WebAudio; a detached, muted media element keeps
    // Chromium's remote audio flowing into the graph.
    const keepAlive = new Audio();
    keepAlive.muted = true;
    keepAlive.srcObject = stream;
    keepAlive.play().catch(() => {});
    const player = new AudioContext();
    audio.player = player;
    audio.keepAlive = keepAlive;
    player.createMediaStreamSource(stream).connect(player.destination);
  }

  // -- chat --------------------------------------------------------------------------------------
  function timeLabel(d) {
    return d.toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
  }

  function incomingChat(sender, text) {
    chatItems.push({ mid: String(Date.now()) + String(++chatSeq).padStart(3, '0'), sender, text, mine: false, at: new Date() });
    renderChat();
  }

  function renderChat() {
    if (!ui.chatList) return;
    if (ui.chatPanel.hidden) {
      ui.chatList.replaceChildren(); // nothing in the DOM while the panel is closed
      return;
    }
    // Virtualised: only the last few items are in the DOM, re-created on every render.
    const visible = chatItems.slice(-VISIBLE_CHAT);
    ui.chatList.replaceChildren(
      ...visible.map((m) => {
        const body = h(
          'div',
          { class: 'fui-ChatMessage__body', id: `content-message-body-${m.mid}`, 'data-tid': 'messageBodyContent' },
          h('div', { dir: 'auto', text: m.text }),
        );
        const time = h('time', { class: 'chat-time', datetime: m.at.toISOString(), text: timeLabel(m.at) });
        const msg = m.mine
          ? h('div', { class: 'fui-ChatMyMessage', 'data-tid': 'chat-pane-message', 'data-mid': m.mid }, time, body)
          : h(
              'div',
              { class: 'fui-ChatMessage', 'data-tid': 'chat-pane-message', 'data-mid': m.mid },
              h('div', { class: 'fui-ChatMessage__author' }, h('span', { 'data-tid': 'message-author-name', text: m.sender })),
              time,
              body,
            );
        return h('div', { 'data-tid': 'chat-pane-item', role: 'listitem', class: 'fui-unstable-ChatItem' }, msg);
      }),
    );
    ui.chatList.scrollTop = ui.chatList.scrollHeight;
  }

  // A CKEditor-5-like composer: the MODEL is the truth. It changes only through beforeinput
  // (typing, IME/insertText, deletions) and paste events; DOM mutations made behind its back
  // (document.execCommand('insertText'), which fires no beforeinput) are reverted on the next
  // render and never submitted.
  function buildEditor() {
    let model = '';
    const editable = h('div', {
      contenteditable: 'true',
      role: 'textbox',
      'aria-label': 'Type a message',
      'aria-multiline': 'true',
      class: 'ck ck-content ck-editor__editable ck-rounded-corners ck-editor__editable_inline ck-blurred',
      lang: 'en-US',
      dir: 'ltr',
    });
    const wrapper = h('div', { class: 'ck ck-reset ck-editor ck-rounded-corners', 'data-tid': 'ckeditor' }, h('div', { class: 'ck ck-editor__main' }, editable));

    function render() {
      const p = document.createElement('p');
      if (model) {
        const lines = model.split('\n');
        lines.forEach((line, i) => {
          if (i) p.append(document.createElement('br'));
          p.append(document.createTextNode(line));
        });
      } else {
        p.className = 'ck-placeholder';
        p.setAttribute('data-placeholder', 'Type a message');
        const br = document.createElement('br');
        br.setAttribute('data-cke-filler', 'true');
        p.append(br);
      }
      editable.replaceChildren(p);
      if (document.activeElement === editable) {
        const sel = getSelection();
        const range = document.createRange();
        range.selectNodeContents(p);
        range.collapse(false);
        sel.removeAllRanges();
        sel.addRange(range);
      }
    }

    function allSelected() {
      const sel = getSelection();
      return !!(sel && !sel.isCollapsed && model && editable.contains(sel.anchorNode) && sel.toString().length >= model.replace(/\n/g, '').length);
    }

    function insert(text) {
      if (allSelected()) model = '';
      model += text;
      render();
    }

    editable.addEventListener('beforeinput', (e) => {
      e.preventDefault();
      const type = e.inputType;
      if (type === 'insertText' || type === 'insertReplacementText' || type === 'insertCompositionText') {
        insert(e.data || (e.dataTransfer && e.dataTransfer.getData('text/plain')) || '');
      } else if (type === 'insertFromPaste' || type === 'insertFromDrop') {
        insert((e.dataTransfer && e.dataTransfer.getData('text/plain')) || '');
      } else if (type === 'insertLineBreak' || type === 'insertParagraph') {
        insert('\n');
      } else if (type.startsWith('delete')) {
        if (allSelected()) model = '';
        else if (type === 'deleteContentBackward') model = model.slice(0, -1);
        else if (type === 'deleteWordBackward') model = model.replace(/\S*\s*$/, '');
        render();
      }
    });
    editable.addEventListener('paste', (e) => {
      e.preventDefault();
      const dt = e.clipboardData;
      insert((dt && dt.getData('text/plain')) || '');
    });
    editable.addEventListener('input', () => {
      // Only DOM changes the model did not make reach here: CKEditor's renderer puts the view back.
      setTimeout(render, 30);
    });
    editable.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submitMessage();
      }
    });
    editable.addEventListener('focus', () => editable.classList.replace('ck-blurred', 'ck-focused'));
    editable.addEventListener('blur', () => editable.classList.replace('ck-focused', 'ck-blurred'));
    render();
    return {
      wrapper,
      editable,
      take() {
        const text = model;
        model = '';
        render();
        return text;
      },
    };
  }

  function submitMessage() {
    const text = ui.editor.take().trim();
    if (!text) return;
    chatItems.push({ mid: String(Date.now()) + String(++chatSeq).padStart(3, '0'), sender: state.name.trim(), text, mine: true, at: new Date() });
    renderChat();
    report({ kind: 'chat', sender: state.name.trim(), text });
  }

  // -- leaving / ending ---------------------------------------------------------------------------
  function leaveDialog() {
    if (state.phase !== 'joined' || document.querySelector('[data-tid="leave-dialog"]')) return;
    const backdrop = h(
      'div',
      { class: 'fui-DialogSurface__backdrop', 'data-tid': 'leave-dialog' },
      h(
        'div',
        { class: 'fui-DialogSurface', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'leave-title' },
        h('h2', { class: 'fui-DialogTitle', id: 'leave-title', text: 'Leave the meeting?' }),
        h(
          'div',
          { class: 'fui-DialogActions' },
          h('button', { type: 'button', class: 'fui-Button', text: 'Cancel', onclick: () => backdrop.remove() }),
          h('button', { type: 'button', class: 'fui-Button fui-Button--primary', text: 'Leave', onclick: () => { backdrop.remove(); vpLeft(); } }),
        ),
      ),
    );
    document.body.append(backdrop);
  }

  function tearDown() {
    clearTimeout(turn.timer);
    audio.stop();
    document.removeEventListener('keydown', onGlobalKey);
    for (const d of document.querySelectorAll('.fui-DialogSurface__backdrop')) d.remove();
    for (const k of Object.keys(ui)) delete ui[k];
  }

  function endScreen(title) {
    return h(
      'div',
      { class: 'end-screen', role: 'main', 'data-tid': 'anon-meeting-end-screen' },
      h('h1', { text: title }),
      h('button', { type: 'button', class: 'fui-Button fui-Button--primary', 'data-tid': 'anon-meeting-end-screen-rejoin-button', text: 'Rejoin' }),
      h('p', { text: 'Want to get more out of Teams? Sign up for free.' }),
    );
  }

  function vpLeft() {
    if (state.phase !== 'joined') return;
    tearDown();
    show(endScreen('You left the meeting'));
    setPhase('left');
  }

  function hostEnds() {
    if (state.phase !== 'joined') return;
    tearDown();
    show(endScreen('The meeting has ended'));
    setPhase('ended');
  }

  function removed() {
    if (state.phase !== 'joined') return;
    tearDown();
    show(retryScreen('You’ve been removed from this meeting', 'Someone removed you from the meeting.', true));
    setPhase('removed');
  }

  function toast(text, seconds) {
    if (!ui.toaster) return;
    const t = h('div', { class: 'fui-Toast', role: 'alert', 'data-tid': 'toast', text: text || 'Someone muted you.' });
    ui.toaster.append(t);
    setTimeout(() => t.remove(), (seconds || 3) * 1000);
  }

  function flicker(seconds) {
    // A re-render: the calling toolbar (Leave button, People badge) and the stage vanish briefly.
    if (!ui.toolbar) return;
    const toolbar = ui.toolbar;
    const stage = ui.stage;
    toolbar.style.display = 'none';
    stage.style.display = 'none';
    const saved = stage.firstChild;
    stage.replaceChildren();
    setTimeout(() => {
      if (state.phase !== 'joined') return;
      toolbar.style.display = '';
      stage.style.display = '';
      stage.replaceChildren(saved);
    }, (seconds || 1.5) * 1000);
  }

  // -- commands -----------------------------------------------------------------------------------
  const pendingCommands = [];
  let lastSeq = 0;

  function applyMeetingCommand(c) {
    switch (c.kind) {
      case 'chat':
        incomingChat(c.sender, c.text);
        break;
      case 'end':
        hostEnds();
        break;
      case 'remove':
        removed();
        break;
      case 'leave':
        participantLeaves(c.name);
        break;
      case 'speak':
        speakNow(c.name);
        break;
      case 'toast':
        toast(c.text, c.seconds);
        break;
      case 'flicker':
        flicker(c.seconds);
        break;
      default:
        break;
    }
  }

  function applyCommand(c) {
    if (c.kind === 'admit' || c.kind === 'deny') {
      state.lobbyDecision = c.kind;
      return;
    }
    if (state.phase === 'joined') applyMeetingCommand(c);
    else if (!['left', 'ended', 'removed', 'denied'].includes(state.phase)) pendingCommands.push(c);
  }

  async function pollCommands() {
    while (M) {
      try {
        const r = await fetch(`/__replica/m/${encodeURIComponent(M.id)}/commands?after=${lastSeq}`);
        if (r.ok) {
          for (const c of await r.json()) {
            lastSeq = Math.max(lastSeq, c.seq);
            try {
              applyCommand(c);
            } catch (e) {
              console.warn('replica command failed', c, e);
            }
          }
        }
      } catch (_) {}
      await sleep(T.commandPoll);
    }
  }

  route();
})();
