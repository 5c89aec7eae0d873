/*
 * Zoom web-client replica (no build step, no network beyond the replica server).
 *
 * Reproduces what ../../../../shared/facts/web-clients.md §1 says of the real client:
 *  - React client at /wc/<id>/join (#input-for-name, #input-for-pwd, button.preview-join-button
 *    that keeps class "disabled" until the name is typed with REAL key events, preview toggles
 *    #preview-audio-control-button "Mute"/"Unmute" and #preview-video-control-button
 *    "Stop Video"/"Start Video" with svg.SvgAudioMute|SvgAudioUnmute / svg.SvgVideoOn|SvgVideoOff,
 *    the camera+mic permission portal "Allow" / "Continue without microphone and camera" that may
 *    come twice); classic client at /wc/join/<id> (#wc_agree1, #inputname, #inputpasscode,
 *    #joinBtn); OneTrust banner (#onetrust-accept-btn-handler) over the form.
 *  - Waiting room rendered INSIDE .meeting-app ("Please wait, the meeting host will let you in
 *    soon.", "Host has joined. We’ve let them know you’re here.").
 *  - In the meeting: footer (#wc-footer, auto-hides when the mouse is idle) with
 *    button.join-audio-container__btn ("join audio" → "mute/unmute my microphone"),
 *    button.send-video-container__btn, participants button (aria-label "…participants list…",
 *    .footer-button__number-counter), chat toggle "open the chat panel" ↔ "close the chat panel",
 *    button[aria-label="Leave"] in [footer-section="right"] → button.leave-meeting-options__btn--danger
 *    "Leave Meeting" (empty aria-label; Enter cancels).
 *  - Active speaker: .speaker-active-container__video-frame .video-avatar__avatar-footer span and
 *    .speaker-bar-container__video-frame--active.
 *  - Chat: div[role="application"][aria-label="Chat Message List"] rows [role=row][aria-label=
 *    "Sender to Everyone, 10:42 AM, text"], div[id^="chat-message-content"], .chat-item__sender once
 *    per group, .chat-rtf-box__display; own messages "You to Everyone…"; TipTap/ProseMirror
 *    editor (.chat-rtf-box__editor-outer [contenteditable], p[data-placeholder="Type message here ..."]),
 *    button[aria-label="send"] or Enter. The message sent is read from the editor's state (which,
 *    like ProseMirror's DOM observer, follows the contenteditable's DOM), not from the test.
 *  - End: .zm-modal[aria-label="Meeting is end now"] .zm-modal-body-title "This meeting has been
 *    ended by host" + button.zm-btn--primary; removed: "You have been removed"; invalid link:
 *    title "Error - Zoom", "This meeting link is invalid (3,001)"; sign-in: #prompt "Sign in to join
 *    this meeting"; bot wall after Join (in a shadow root, with a reCAPTCHA iframe); wrong passcode.
 *  - Audio: every participant's tone WAV is decoded in an AudioContext, looped through a
 *    per-participant gain (open only during their turn) into a MediaStreamAudioDestinationNode, sent
 *    through a loopback RTCPeerConnection pair (Opus) and the REMOTE track is played through an
 *    AudioContext (no <audio> element in the DOM), only once computer audio is joined.
 *
 * Test knob (ignored by real Zoom): ?__replica_audio=manual disables the automatic computer-audio
 * join that follows "Allow", so the footer "Join Audio" path must be used.
 */
(() => {
  'use strict';

  // ---- where are we ------------------------------------------------------------------------
  const path = location.pathname;
  let m = path.match(/^\/wc\/join\/([A-Za-z0-9_-]+)/);
  const CLASSIC = !!m;
  if (!m) m = path.match(/^\/wc\/([A-Za-z0-9_-]+)\/(?:join|start|meeting|videomeeting)/);
  const MID = m ? m[1] : '';
  const params = new URLSearchParams(location.search);
  const URL_PWD = params.get('pwd');
  const MANUAL_AUDIO = params.get('__replica_audio') === 'manual';
  const API = '/__replica/m/' + encodeURIComponent(MID);

  const S = {
    scenario: null,
    phase: 'loading', // loading|error|signin|prejoin|joining|captcha|waiting|meeting|ended|removed|denied|left
    name: '',
    keyTyped: false,
    pwdNeeded: false,
    pwdError: '',
    triedPwd: false,
    micOn: false,
    camOn: false,
    permission: 'prompt', // prompt|granted|denied
    previewStream: null,
    consent: false,
    termsAgreed: false,
    preAdmit: null, // 'admit' | 'deny' decided by a command before the lobby
    present: [], // [{name, index}]
    speaker: null, // participant index or null
    audioJoined: false,
    micMuted: true,
    videoOn: false,
    chat: [], // {id, sender, text, time, mine, at}
    pendingChat: [],
    chatOpen: false,
    participantsOpen: false,
    unread: 0,
    msgSeq: 0,
    reportedSpeaker: null,
  };

  // ---- helpers -----------------------------------------------------------------------------
  function h(tag, attrs, children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return el;
  }
  function svg(cls) {
    const s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    s.setAttribute('class', cls);
    s.setAttribute('viewBox', '0 0 24 24');
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    p.setAttribute('d', 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z');
    s.appendChild(p);
    return s;
  }
  const root = document.getElementById('root');
  const timers = new Set();
  function later(fn, ms) {
    const id = setTimeout(() => {
      timers.delete(id);
      try {
        fn();
      } catch (e) {
        console.error('[replica]', e);
      }
    }, ms);
    timers.add(id);
    return id;
  }
  function clearTimers() {
    for (const id of timers) clearTimeout(id);
    timers.clear();
  }
  function report(obj) {
    return fetch(API + '/report', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(obj),
      keepalive: true,
    }).catch(() => {});
  }
  window.__replicaUplink = { micOn: () => S.audioJoined && !S.micMuted, report };
  function reportState(state) {
    report({ kind: 'state', state });
  }
  function clock() {
    return new Date().toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
  }
  function participantName(idx) {
    const p = S.scenario.participants[idx];
    return p ? p.name : '';
  }

  // ---- commands from the test ----------------------------------------------------------------
  const CURSOR_KEY = 'zoom-replica-cursor:' + MID;
  let cursor = Number(sessionStorage.getItem(CURSOR_KEY) || 0);
  async function pollCommands() {
    try {
      const r = await fetch(API + '/commands?after=' + cursor, { cache: 'no-store' });
      if (r.ok) {
        for (const c of await r.json()) {
          cursor = Math.max(cursor, c.seq);
          sessionStorage.setItem(CURSOR_KEY, String(cursor));
          try {
            applyCommand(c);
          } catch (e) {
            console.error('[replica] command failed', c, e);
          }
        }
      }
    } catch (_) {}
    setTimeout(pollCommands, 300);
  }
  function applyCommand(c) {
    switch (c.kind) {
      case 'chat':
        if (S.phase === 'meeting') addMessage(String(c.sender), String(c.text), false);
        else S.pendingChat.push([String(c.sender), String(c.text)]);
        break;
      case 'end':
        if (S.phase === 'meeting' || S.phase === 'waiting') endMeeting();
        break;
      case 'remove':
        if (S.phase === 'meeting') removeVp();
        else if (S.phase === 'waiting') denyVp();
        break;
      case 'admit':
        if (S.phase === 'waiting') admit();
        else if (!['meeting', 'ended', 'removed', 'denied', 'left'].includes(S.phase)) S.preAdmit = 'admit';
        break;
      case 'deny':
        if (S.phase === 'waiting') denyVp();
        else if (!['meeting', 'ended', 'removed', 'denied', 'left'].includes(S.phase)) S.preAdmit = 'deny';
        break;
      case 'leave':
        participantLeaves(String(c.name));
        break;
      case 'speak': {
        const p = S.present.find((x) => x.name === c.name);
        if (p && S.phase === 'meeting') speak(p.index);
        break;
      }
      case 'toast':
        showToast(String(c.text || 'Bob has been removed from the meeting'), Number(c.ms || 2500));
        break;
      case 'flicker':
        flicker(Number(c.ms || 2500));
        break;
      default:
        break;
    }
  }

  // ---- boot ------------------------------------------------------------------------------------
  async function boot() {
    let scenario = null;
    try {
      const r = await fetch(API + '/scenario', { cache: 'no-store' });
      if (r.ok) scenario = await r.json();
    } catch (_) {}
    if (!MID || !scenario) {
      renderInvalid();
      return;
    }
    S.scenario = scenario;
    S.present = scenario.participants.map((p, i) => ({ name: p.name, index: i }));
    pollCommands();
    if (scenario.not_found) {
      renderInvalid();
      return;
    }
    showConsentBanner();
    if (scenario.login_required) {
      renderSignIn();
      return;
    }
    S.pwdNeeded = !!scenario.passcode && !URL_PWD;
    if (CLASSIC) {
      showTerms();
      renderClassicPrejoin();
    } else {
      renderPrejoin();
      later(() => showPermissionDialog(1), 400);
    }
    S.phase = 'prejoin';
    reportState('prejoin');
  }

  function renderInvalid() {
    S.phase = 'error';
    document.title = 'Error - Zoom';
    root.replaceChildren(
      h('div', { class: 'error-page' }, [
        h('h2', { class: 'error-page__title', text: 'This meeting link is invalid (3,001)' }),
        h('p', { class: 'error-page__desc', text: 'Please check the meeting link and try again.' }),
      ]),
    );
    if (S.scenario) reportState('not_found');
  }

  function renderSignIn() {
    S.phase = 'signin';
    root.replaceChildren(
      h('div', { id: 'prompt' }, [
        h('h3', { class: 'prompt-title', text: 'Sign in to join this meeting' }),
        h('p', {
          text: 'The host requires authentication on the commercial Zoom platform to join this meeting.',
        }),
        h('button', { type: 'button', class: 'zm-btn zm-btn--primary', text: 'Sign In' }),
      ]),
    );
    reportState('login_required');
  }

  // ---- OneTrust consent --------------------------------------------------------------------------
  function showConsentBanner() {
    const close = () => {
      S.consent = true;
      sdk.remove();
    };
    const sdk = h('div', { id: 'onetrust-consent-sdk' }, [
      h('div', { class: 'onetrust-pc-dark-filter ot-fade-in' }),
      h('div', { id: 'onetrust-banner-sdk', class: 'otFlat', role: 'region', 'aria-label': 'Cookie banner' }, [
        h('div', { id: 'onetrust-policy' }, [
          h('h2', { id: 'onetrust-policy-title', text: 'Cookies on Zoom' }),
          h('p', {
            id: 'onetrust-policy-text',
            text: 'We use cookies and similar technologies to provide our services, analyze traffic and improve your experience.',
          }),
        ]),
        h('div', { id: 'onetrust-button-group' }, [
          h('button', { id: 'onetrust-accept-btn-handler', onclick: close, text: 'Accept Cookies' }),
          h('button', { id: 'onetrust-reject-all-handler', onclick: close, text: 'Reject All' }),
        ]),
      ]),
    ]);
    document.body.appendChild(sdk);
  }

  // ---- permission portal (React client) -------------------------------------------------------------
  function showPermissionDialog(step) {
    if (S.phase !== 'prejoin' || S.permission === 'granted') return;
    const portal = h('div', { class: 'ReactModalPortal' });
    const close = () => portal.remove();
    const allow = async () => {
      close();
      try {
        const stream = await navigator.mediaDevices.getUserMedia(
          step === 1 ? { audio: true, video: true } : { audio: true },
        );
        S.permission = 'granted';
        S.micOn = true;
        if (step === 1) {
          S.camOn = true;
          S.previewStream = stream;
        } else {
          for (const t of stream.getTracks()) t.stop();
        }
        renderPreviewControls();
      } catch (_) {
        if (step === 1) later(() => showPermissionDialog(2), 300);
        else S.permission = 'denied';
      }
    };
    const skip = () => {
      close();
      if (step === 1) later(() => showPermissionDialog(2), 300);
      else S.permission = 'denied';
    };
    portal.appendChild(
      h('div', { class: 'ReactModal__Overlay ReactModal__Overlay--after-open' }, [
        h(
          'div',
          {
            class: 'ReactModal__Content ReactModal__Content--after-open pepc-permission-dialog',
            role: 'dialog',
            'aria-modal': 'true',
            tabindex: '-1',
          },
          [
            h('div', {
              class: 'pepc-permission-dialog__title',
              text:
                step === 1
                  ? 'Do you want people to see and hear you in the meeting?'
                  : 'Do you want people to hear you in the meeting?',
            }),
            h('div', {
              class: 'pepc-permission-dialog__desc',
              text: 'You can still turn off your microphone and camera anytime in the meeting.',
            }),
            h('button', { type: 'button', class: 'pepc-permission-dialog__footer-button', onclick: allow, text: 'Allow' }),
            h('button', {
              type: 'button',
              class: 'pepc-permission-dialog__footer-button secondary',
              onclick: skip,
              text: 'Continue without microphone and camera',
            }),
          ],
        ),
      ]),
    );
    document.body.appendChild(portal);
  }

  // ---- pre-join (React) ----------------------------------------------------------------------------
  let previewControls = null;
  let previewVideo = null;
  let joinButton = null;
  function renderPreviewControls() {
    if (!previewControls) return;
    const mic = h(
      'button',
      {
        id: 'preview-audio-control-button',
        type: 'button',
        class: 'preview-video__control-button',
        'aria-label': S.micOn ? 'Mute' : 'Unmute',
        onclick: () => {
          S.micOn = !S.micOn;
          renderPreviewControls();
        },
      },
      [svg(S.micOn ? 'SvgAudioMute' : 'SvgAudioUnmute'), h('span', { text: S.micOn ? 'Mute' : 'Unmute' })],
    );
    const cam = h(
      'button',
      {
        id: 'preview-video-control-button',
        type: 'button',
        class: 'preview-video__control-button',
        'aria-label': S.camOn ? 'Stop Video' : 'Start Video',
        onclick: () => {
          S.camOn = !S.camOn;
          renderPreviewControls();
        },
      },
      [svg(S.camOn ? 'SvgVideoOn' : 'SvgVideoOff'), h('span', { text: S.camOn ? 'Stop Video' : 'Start Video' })],
    );
    previewControls.replaceChildren(mic, cam);
    if (previewVideo) {
      const tracks = S.previewStream ? S.previewStream.getVideoTracks() : [];
      previewVideo.srcObject = S.camOn && tracks.length ? new MediaStream(tracks) : null;
    }
  }

  function joinEnabled() {
    if (!S.name.trim()) return false;
    if (S.pwdNeeded) {
      const pwd = document.getElementById(CLASSIC ? 'inputpasscode' : 'input-for-pwd');
      if (!pwd || !pwd.value) return false;
    }
    return true;
  }
  function updateJoinButton() {
    if (!joinButton) return;
    if (CLASSIC) joinButton.disabled = !joinEnabled();
    else joinButton.classList.toggle('disabled', !joinEnabled());
  }

  function renderPrejoin() {
    previewControls = h('div', { class: 'preview-video__control-button-container' });
    previewVideo = h('video', { class: 'preview-video__video', autoplay: true, playsinline: true });
    previewVideo.muted = true;
    const name = h('input', {
      id: 'input-for-name',
      type: 'text',
      class: 'preview-meeting-info-field-input',
      placeholder: 'Your Name',
      maxlength: '64',
      autocomplete: 'off',
      'aria-label': 'Your Name',
    });
    name.value = S.name;
    // Zoom's React client takes the name only from real typing: a trusted keydown followed by the
    // input it causes. Programmatic value setters, synthetic events and paste-like inserts
    // without key events leave the Join button disabled (VX, 2026-04).
    name.addEventListener('keydown', (e) => {
      S.keyTyped = e.isTrusted;
      if (e.key === 'Enter' && e.isTrusted) {
        e.preventDefault();
        submitJoin();
      }
    });
    name.addEventListener('input', (e) => {
      if (e.isTrusted && S.keyTyped) S.name = name.value;
      S.keyTyped = false;
      updateJoinButton();
    });
    const fields = [];
    if (S.pwdNeeded) {
      const pwd = h('input', {
        id: 'input-for-pwd',
        type: 'password',
        class: 'preview-meeting-info-field-input',
        placeholder: 'Meeting Passcode',
        autocomplete: 'off',
        'aria-label': 'Meeting passcode',
        oninput: updateJoinButton,
      });
      fields.push(
        h('div', { class: 'preview-meeting-info-field' }, [
          h('label', { for: 'input-for-pwd', text: 'Meeting passcode' }),
          pwd,
          S.pwdError ? h('div', { class: 'preview-meeting-info-field-error', role: 'alert', text: S.pwdError }) : null,
        ]),
      );
    }
    fields.push(
      h('div', { class: 'preview-meeting-info-field' }, [h('label', { for: 'input-for-name', text: 'Your Name' }), name]),
    );
    joinButton = h('button', {
      type: 'button',
      class: 'zm-btn preview-join-button zm-btn--default zm-btn__outline--blue disabled',
      tabindex: '0',
      onclick: () => submitJoin(),
      text: 'Join',
    });
    root.replaceChildren(
      h('div', { class: 'preview-new-flow' }, [
        h('div', { class: 'preview-video-wrap' }, [h('div', { class: 'preview-video' }, [previewVideo]), previewControls]),
        h('div', { class: 'preview-meeting-info' }, [
          h('h1', { class: 'preview-meeting-info__title', text: S.pwdNeeded ? 'Enter Meeting Info' : 'Join Meeting' }),
          ...fields,
          joinButton,
        ]),
      ]),
    );
    renderPreviewControls();
    updateJoinButton();
  }

  // ---- pre-join (classic) -----------------------------------------------------------------------------
  function showTerms() {
    const portal = h('div', { class: 'zm-modal-legacy-wrap' });
    const agree = () => {
      S.termsAgreed = true;
      portal.remove();
    };
    portal.append(
      h('div', { class: 'zm-modal-mask' }),
      h('div', { class: 'zm-modal zm-modal-legacy', role: 'dialog', 'aria-label': 'Terms of Service' }, [
        h('div', { class: 'zm-modal-body' }, [
          h('div', {
            class: 'zm-modal-body-title',
            text: 'By clicking "I Agree", you agree to our Terms of Service and Privacy Statement.',
          }),
        ]),
        h('div', { class: 'zm-modal-footer' }, [
          h('div', { class: 'zm-modal-footer-default-actions' }, [
            h('button', { type: 'button', id: 'wc_disagree1', class: 'zm-btn zm-btn__outline--white', text: 'Cancel' }),
            h('button', { type: 'button', id: 'wc_agree1', class: 'zm-btn zm-btn--primary', onclick: agree, text: 'I Agree' }),
          ]),
        ]),
      ]),
    );
    document.body.appendChild(portal);
  }

  function renderClassicPrejoin() {
    const name = h('input', {
      id: 'inputname',
      type: 'text',
      class: 'form-control',
      placeholder: 'Your Name',
      maxlength: '64',
      oninput: () => {
        S.name = name.value;
        updateJoinButton();
      },
    });
    name.value = S.name;
    name.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        submitJoin();
      }
    });
    const items = [h('h1', { text: 'Join Meeting' }), name];
    if (S.pwdNeeded) {
      items.push(
        h('input', {
          id: 'inputpasscode',
          type: 'password',
          class: 'form-control',
          placeholder: 'Meeting Passcode',
          oninput: updateJoinButton,
        }),
      );
      if (S.pwdError) items.push(h('div', { class: 'error-msg', role: 'alert', text: S.pwdError }));
    }
    joinButton = h('button', { id: 'joinBtn', type: 'button', class: 'btn btn-primary', onclick: () => submitJoin(), text: 'Join' });
    items.push(joinButton);
    root.replaceChildren(h('div', { class: 'classic-join', id: 'join-form' }, items));
    updateJoinButton();
  }

  // ---- Join ---------------------------------------------------------------------------------------
  function submitJoin() {
    if (S.phase !== 'prejoin' || !joinEnabled()) return;
    if (CLASSIC && !S.termsAgreed) return;
    S.phase = 'joining';
    if (joinButton) {
      joinButton.classList.add('loading');
      joinButton.textContent = 'Joining...';
    }
    later(afterJoinClick, 600);
  }

  function afterJoinClick() {
    const sc = S.scenario;
    let pass = URL_PWD;
    if (S.pwdNeeded) {
      const el = document.getElementById(CLASSIC ? 'inputpasscode' : 'input-for-pwd');
      pass = el ? el.value : '';
    }
    if (sc.passcode && pass !== sc.passcode) {
      S.pwdNeeded = true;
      S.pwdError = CLASSIC ? 'Incorrect password, please try again.' : 'Passcode wrong, please try again.';
      S.phase = 'prejoin';
      if (CLASSIC) renderClassicPrejoin();
      else renderPrejoin();
      reportState('wrong_passcode');
      return;
    }
    if (sc.captcha) {
      S.phase = 'captcha';
      showBotWall();
      reportState('captcha');
      return;
    }
    if (S.previewStream) {
      for (const t of S.previewStream.getTracks()) t.stop();
      S.previewStream = null;
    }
    const lobby = sc.manual_admission || sc.waiting_room_s !== null || sc.deny;
    if (!lobby && S.preAdmit !== 'deny') {
      admit();
      return;
    }
    enterWaitingRoom();
  }

  function showBotWall() {
    const text =
      'Automated bots aren’t allowed to join this meeting or webinar and must use Zoom RTMS… Sign in to join';
    if (CLASSIC) {
      document.body.appendChild(
        h('div', { class: 'zm-modal zm-modal-legacy', role: 'dialog', 'aria-label': 'Verification' }, [
          h('div', { class: 'zm-modal-body-title', text: 'We detected you may be a bot' }),
          h('p', { text }),
          h('iframe', { src: '/__replica/static/zoom/recaptcha.html?k=anchor', title: 'reCAPTCHA', width: '304', height: '78' }),
        ]),
      );
      return;
    }
    // The React client's wall sits in a shadow root: document-level queries and
    // document.body.innerText do not see it (LMA PR #300).
    const host = h('div', { class: 'zm-bot-detect' });
    const shadow = host.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent =
      '.wall{position:fixed;inset:0;background:rgba(0,0,0,.6);display:flex;align-items:center;justify-content:center;z-index:3000}' +
      '.box{background:#fff;color:#222;padding:24px;border-radius:12px;width:460px}';
    shadow.append(
      style,
      h('div', { class: 'wall' }, [
        h('div', { class: 'box', role: 'dialog', 'aria-modal': 'true' }, [
          h('h2', { text: 'We detected you may be a bot' }),
          h('p', { text }),
          h('iframe', { src: '/__replica/static/zoom/recaptcha.html?k=anchor', title: 'reCAPTCHA', width: '304', height: '78' }),
          h('button', { type: 'button', class: 'zm-btn', text: 'Sign in to join' }),
        ]),
      ]),
    );
    document.body.appendChild(host);
  }

  // ---- waiting room ------------------------------------------------------------------------------
  function enterWaitingRoom() {
    S.phase = 'waiting';
    root.replaceChildren(
      h('div', { class: 'meeting-app' }, [
        h('div', { class: 'wr-container' }, [
          h('div', { class: 'wr-content' }, [
            h('h2', { class: 'wr-tile', text: 'Please wait, the meeting host will let you in soon.' }),
            h('div', { class: 'wr-meeting-topic', text: 'Zoom Meeting ' + MID }),
            h('p', { class: 'wr-host-joined', text: 'Host has joined. We’ve let them know you’re here.' }),
          ]),
        ]),
      ]),
    );
    reportState('lobby');
    const sc = S.scenario;
    if (S.preAdmit === 'admit') {
      later(admit, 500);
      return;
    }
    if (S.preAdmit === 'deny') {
      later(denyVp, 500);
      return;
    }
    if (sc.manual_admission) return;
    const wait = (sc.waiting_room_s === null ? 1 : sc.waiting_room_s) * 1000;
    later(() => {
      if (S.phase !== 'waiting') return;
      if (sc.deny) denyVp();
      else admit();
    }, wait);
  }

  function denyVp() {
    if (S.phase !== 'waiting') return;
    clearTimers();
    S.phase = 'denied';
    root.replaceChildren(h('div', { class: 'meeting-app' }));
    showZmModal(null, 'You have been removed', 'The host has removed you from the waiting room.', 'OK', () => {
      location.href = '/postattendee?mn=' + encodeURIComponent(MID);
    });
    reportState('denied');
  }

  // ---- in the meeting -----------------------------------------------------------------------------
  const ui = {};
  function admit() {
    if (S.phase === 'meeting') return;
    clearTimers();
    S.phase = 'meeting';
    buildMeeting();
    reportState('joined');
    const sc = S.scenario;
    MeetingAudio.init();
    if (S.present.length) speak(S.present[0].index);
    else renderSpeaker();
    for (const [sender, text] of S.pendingChat.splice(0)) addMessage(sender, text, false);
    for (const line of sc.chat) later(() => addMessage(line.sender, line.text, false), line.at_s * 1000);
    if (sc.end_after_s !== null) later(endMeeting, sc.end_after_s * 1000);
    if (sc.remove_after_s !== null) later(removeVp, sc.remove_after_s * 1000);
    if (sc.everyone_leaves_after_s !== null) {
      later(() => {
        for (const p of S.present.slice()) participantLeaves(p.name);
      }, sc.everyone_leaves_after_s * 1000);
    }
    if (S.permission === 'granted' && !MANUAL_AUDIO) later(joinComputerAudio, 800);
    later(showAiCompanionNotice, 1500);
  }

  function buildMeeting() {
    ui.activeName = h('span', { role: 'none' });
    ui.activeTitle = h('div', { class: 'video-avatar__avatar-title' });
    ui.bar = h('div', { class: 'speaker-bar-container__horizontal-view-wrap' });
    ui.right = h('div', { id: 'wc-container-right', class: 'meeting-client__right' });
    ui.footer = h('div', { id: 'wc-footer', class: 'footer', 'aria-label': 'Meeting controls' });
    ui.client = h('div', { id: 'wc-container-left', class: 'meeting-client' }, [
      h('div', { class: 'meeting-client-inner' }, [
        h('div', { id: 'wc-content', class: 'meeting-client-inner__content' }, [
          h('div', { class: 'speaker-view' }, [
            h('div', { class: 'speaker-active-container__wrap' }, [
              h('div', { class: 'speaker-active-container__video-frame' }, [
                h('div', { class: 'video-avatar__avatar' }, [
                  ui.activeTitle,
                  h('div', { class: 'video-avatar__avatar-footer' }, [ui.activeName]),
                ]),
              ]),
            ]),
            ui.bar,
          ]),
        ]),
        ui.footer,
      ]),
      ui.right,
    ]);
    ui.app = h('div', { class: 'meeting-app' }, [ui.client]);
    root.replaceChildren(ui.app);
    renderFooter();
    renderTiles();
    renderRight();
    wakeFooter();
    for (const type of ['mousemove', 'mousedown', 'keydown', 'touchstart']) {
      document.addEventListener(type, wakeFooter, { passive: true });
    }
    document.addEventListener(
      'keydown',
      (e) => {
        // Enter on the leave popover cancels it, even on "Leave Meeting" (VX).
        if (e.key === 'Enter' && ui.leavePopover) {
          e.preventDefault();
          e.stopPropagation();
          closeLeavePopover();
        }
      },
      true,
    );
  }

  let footerTimer = null;
  function wakeFooter() {
    if (!ui.footer) return;
    ui.footer.classList.remove('footer--hidden');
    clearTimeout(footerTimer);
    footerTimer = setTimeout(() => ui.footer && ui.footer.classList.add('footer--hidden'), 4000);
  }

  function footerButton(attrs, label, extra) {
    return h('button', { type: 'button', ...attrs }, [
      h('span', { class: 'footer-button-base__img-layer' }, [svg('footer-button-base__img')]),
      ...(extra || []),
      h('span', { class: 'footer-button-base__button-label', text: label }),
    ]);
  }

  function renderFooter() {
    if (!ui.footer) return;
    const count = S.present.length + 1;
    let audioLabel = 'join audio';
    let audioText = 'Join Audio';
    if (S.audioJoined) {
      audioLabel = S.micMuted ? 'unmute my microphone' : 'mute my microphone';
      audioText = S.micMuted ? 'Unmute' : 'Mute';
    }
    const audioBtn = footerButton(
      {
        class: 'footer-button-base__button ax-outline join-audio-container__btn',
        'aria-label': audioLabel,
        onclick: () => {
          if (!S.audioJoined) showJoinAudioDialog();
          else {
            S.micMuted = !S.micMuted;
            renderFooter();
          }
        },
      },
      audioText,
    );
    const videoBtn = footerButton(
      {
        class: 'footer-button-base__button ax-outline send-video-container__btn',
        'aria-label': S.videoOn ? 'stop my video' : 'start my video',
        onclick: () => {
          S.videoOn = !S.videoOn;
          renderFooter();
        },
      },
      S.videoOn ? 'Stop Video' : 'Start Video',
    );
    const partsBtn = footerButton(
      {
        class: 'footer-button-base__button ax-outline footer-button__button footer-button__participants-icon',
        'aria-label': S.participantsOpen
          ? 'close the participants list pane'
          : 'open the participants list pane, ' + count + ' participants',
        onclick: () => {
          S.participantsOpen = !S.participantsOpen;
          renderFooter();
          renderRight();
        },
      },
      'Participants',
      [h('span', { class: 'footer-button__number-counter' }, [h('span', { text: String(count) })])],
    );
    const chatBtn = footerButton(
      {
        class: 'footer-button-base__button ax-outline footer-button__button footer-button__chat-icon',
        'aria-label': S.chatOpen ? 'close the chat panel' : 'open the chat panel',
        onclick: () => {
          S.chatOpen = !S.chatOpen;
          if (S.chatOpen) S.unread = 0;
          renderFooter();
          renderRight();
        },
      },
      'Chat',
      S.unread ? [h('span', { class: 'footer-chat-unread', text: String(S.unread) })] : [],
    );
    const leaveBtn = footerButton(
      {
        class: 'footer-button-base__button ax-outline footer-button__button footer__leave-btn',
        'aria-label': 'Leave',
        onclick: toggleLeavePopover,
      },
      'Leave',
    );
    ui.footer.replaceChildren(
      h('div', { class: 'footer__inner' }, [
        h('div', { 'footer-section': 'left', class: 'footer__leftBtn' }, [
          h('div', { class: 'join-audio-container' }, [audioBtn]),
          h('div', { class: 'send-video-container' }, [videoBtn]),
        ]),
        h('div', { 'footer-section': 'main', class: 'footer__btns-container' }, [partsBtn, chatBtn]),
        h('div', { 'footer-section': 'right', class: 'footer__rightBtn' }, [leaveBtn]),
      ]),
    );
  }

  function tile(name, active) {
    return h(
      'div',
      { class: 'speaker-bar-container__video-frame' + (active ? ' speaker-bar-container__video-frame--active' : '') },
      [
        h('div', { class: 'video-avatar__avatar' }, [
          h('div', { class: 'video-avatar__avatar-title', text: name.slice(0, 1).toUpperCase() }),
          h('div', { class: 'video-avatar__avatar-footer' }, [h('span', { role: 'none', text: name })]),
        ]),
      ],
    );
  }

  function renderTiles() {
    if (!ui.bar) return;
    const tiles = S.present.map((p) => tile(p.name, p.index === S.speaker));
    tiles.push(tile(S.name, false));
    ui.bar.replaceChildren(...tiles);
    renderSpeaker();
  }

  function renderSpeaker() {
    if (!ui.activeName) return;
    // The main frame shows the active speaker; with nobody else here, yourself.
    const name = S.speaker === null ? S.name : participantName(S.speaker);
    ui.activeName.textContent = name;
    ui.activeTitle.textContent = name.slice(0, 1).toUpperCase();
    if (S.speaker !== null && name !== S.reportedSpeaker) {
      S.reportedSpeaker = name;
      report({ kind: 'speaker', name });
    }
  }

  // Speaking turns: present participants speak in order, speak_turn_s each, cycling.
  let turnTimer = null;
  function speak(idx) {
    clearTimeout(turnTimer);
    timers.delete(turnTimer);
    S.speaker = idx;
    for (const el of ui.bar ? ui.bar.children : []) el.classList.remove('speaker-bar-container__video-frame--active');
    renderTiles();
    MeetingAudio.speak(idx);
    if (idx !== null) turnTimer = later(nextTurn, S.scenario.speak_turn_s * 1000);
  }
  function nextTurn() {
    if (S.phase !== 'meeting') return;
    if (!S.present.length) {
      speak(null);
      return;
    }
    const pos = S.present.findIndex((p) => p.index === S.speaker);
    speak(S.present[(pos + 1) % S.present.length].index);
  }
  function participantLeaves(name) {
    const pos = S.present.findIndex((p) => p.name === name);
    if (pos < 0) return;
    const [gone] = S.present.splice(pos, 1);
    if (S.phase !== 'meeting') return;
    if (S.speaker === gone.index) {
      if (S.present.length) speak(S.present[pos % S.present.length].index);
      else speak(null);
    } else {
      renderTiles();
    }
    renderFooter();
    renderRight();
  }

  function renderRight() {
    if (!ui.right) return;
    const sections = [];
    if (S.participantsOpen) {
      const count = S.present.length + 1;
      const items = [
        h('div', { role: 'listitem', class: 'participants-li', 'aria-label': S.name + ' (Me), computer audio muted, video off' }, [
          h('span', { class: 'participants-item__display-name', text: S.name }),
          h('span', { class: 'participants-item__name-label', text: '(Me)' }),
        ]),
        ...S.present.map((p, i) =>
          h(
            'div',
            {
              role: 'listitem',
              class: 'participants-li',
              'aria-label': p.name + (i === 0 ? ' (Host)' : '') + ', computer audio unmuted, video off',
            },
            [
              h('span', { class: 'participants-item__display-name', text: p.name }),
              i === 0 ? h('span', { class: 'participants-item__name-label', text: '(Host)' }) : null,
            ],
          ),
        ),
      ];
      sections.push(
        h('div', { class: 'participants-section-container' }, [
          h('div', { class: 'participants-header__title', text: 'Participants (' + count + ')' }),
          h('div', { role: 'list', 'aria-label': 'participants list, ' + count + ' participants', class: 'participants-list-container' }, items),
        ]),
      );
    }
    if (S.chatOpen) {
      if (!ui.chatSection) buildChatSection();
      renderChatList();
      sections.push(ui.chatSection);
    } else {
      ui.chatSection = null;
    }
    ui.right.replaceChildren(...sections);
  }

  // ---- chat -------------------------------------------------------------------------------------------
  function buildChatSection() {
    ui.chatList = h('div', { role: 'application', 'aria-label': 'Chat Message List', class: 'chat-list__chat-virtualized' });
    ui.sendBtn = h('button', { type: 'button', 'aria-label': 'send', class: 'chat-rtf-box__send', disabled: true, text: 'Send' });
    const editor = createEditor((text) => {
      addMessage(S.name, text, true);
      report({ kind: 'chat', sender: S.name, text });
    }, ui.sendBtn);
    ui.chatSection = h('div', { class: 'chat-container', id: 'chat-container' }, [
      h('div', { class: 'chat-header__title', text: 'Meeting Chat' }),
      ui.chatList,
      h('div', { class: 'chat-rtf-box' }, [
        h('div', { class: 'chat-rtf-box__receiver', text: 'To: Everyone' }),
        h('div', { class: 'chat-rtf-box__editor-outer' }, [h('div', { class: 'chat-rtf-box__editor-wrapper' }, [editor])]),
        h('div', { class: 'chat-rtf-box__bar' }, [ui.sendBtn]),
      ]),
    ]);
  }

  // A TipTap/ProseMirror-like editor: its state is parsed from the contenteditable's DOM whenever the
  // DOM changes (typing, execCommand, paste), like ProseMirror's DOMObserver; Enter (keymap) or the send
  // button submits the STATE, then the editor resets.
  function createEditor(onSubmit, sendBtn) {
    const ed = h('div', {
      contenteditable: 'true',
      role: 'textbox',
      translate: 'no',
      tabindex: '0',
      class: 'tiptap ProseMirror',
      'aria-label': 'Type message here ...',
      'aria-multiline': 'true',
    });
    let state = '';
    const empty = () => {
      ed.replaceChildren(
        h('p', { 'data-placeholder': 'Type message here ...', class: 'is-empty is-editor-empty' }, [
          h('br', { class: 'ProseMirror-trailingBreak' }),
        ]),
      );
    };
    const parse = () => {
      const blocks = Array.from(ed.children).filter((c) => c.tagName === 'P');
      state = blocks.length ? blocks.map((p) => p.textContent).join('\n') : ed.textContent;
      const first = ed.querySelector('p');
      if (first) {
        first.classList.toggle('is-empty', !state);
        first.classList.toggle('is-editor-empty', !state);
      }
      sendBtn.disabled = !state.trim();
    };
    const submit = () => {
      const text = state.trim();
      if (!text) return;
      empty();
      parse();
      onSubmit(text);
    };
    ed.addEventListener('input', parse);
    new MutationObserver(parse).observe(ed, { childList: true, subtree: true, characterData: true });
    ed.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        parse();
        submit();
      }
    });
    sendBtn.addEventListener('click', () => {
      parse();
      submit();
    });
    empty();
    return ed;
  }

  function addMessage(sender, text, mine) {
    S.msgSeq += 1;
    S.chat.push({ id: 'chat-message-content-' + Date.now().toString(36) + '-' + S.msgSeq, sender, text, time: clock(), mine, at: Date.now() });
    if (!S.chatOpen && !mine) S.unread += 1;
    if (S.chatOpen) renderChatList();
    else renderFooter();
  }

  function renderChatList() {
    if (!ui.chatList) return;
    // Virtualised: only the newest rows exist in the DOM.
    const start = Math.max(0, S.chat.length - 40);
    const rows = [];
    for (let i = start; i < S.chat.length; i++) {
      const msg = S.chat[i];
      const prev = S.chat[i - 1];
      const shown = msg.mine ? 'You' : msg.sender;
      const grouped = prev && prev.sender === msg.sender && prev.mine === msg.mine && msg.at - prev.at < 60000;
      const label = shown + ' to Everyone, ' + msg.time + ', ' + msg.text;
      rows.push(
        h('div', { role: 'row', 'aria-label': label, class: 'chat-item-container', id: 'chat-item-container-' + msg.id }, [
          grouped && i !== start
            ? null
            : h('div', { class: 'chat-item__chat-info' }, [
                h('span', { class: 'chat-item__sender', text: shown }),
                h('span', { class: 'chat-item__to', text: 'to' }),
                h('span', { class: 'chat-item__receiver', text: 'Everyone' }),
                h('span', { class: 'chat-item__chat-info-time-stamp', text: msg.time }),
              ]),
          h('div', { class: 'new-chat-message__container', id: msg.id, 'aria-label': label }, [
            h('div', { class: 'new-chat-message__content' }, [
              h('div', { class: 'new-chat-message__text-box' }, [h('div', { class: 'chat-rtf-box__display', text: msg.text })]),
            ]),
          ]),
        ]),
      );
    }
    ui.chatList.replaceChildren(...rows);
    ui.chatList.scrollTop = ui.chatList.scrollHeight;
  }

  // ---- computer audio -----------------------------------------------------------------------------------
  function showJoinAudioDialog() {
    if (document.querySelector('.join-dialog')) return;
    const portal = h('div', { class: 'ReactModalPortal' });
    const close = () => portal.remove();
    portal.appendChild(
      h('div', { class: 'ReactModal__Overlay ReactModal__Overlay--after-open' }, [
        h('div', { class: 'ReactModal__Content ReactModal__Content--after-open join-dialog', role: 'dialog', 'aria-label': 'Join Audio' }, [
          h('div', { class: 'join-dialog__title', text: 'Join Audio' }),
          h('button', {
            type: 'button',
            class: 'zm-btn join-audio-by-voip__join-btn zm-btn--primary zm-btn__outline--white',
            onclick: async () => {
              close();
              try {
                const s = await navigator.mediaDevices.getUserMedia({ audio: true });
                for (const t of s.getTracks()) t.stop();
              } catch (_) {}
              joinComputerAudio();
            },
            text: 'Join Audio by Computer',
          }),
          h('button', { type: 'button', class: 'secondary', onclick: close, text: 'Close' }),
        ]),
      ]),
    );
    document.body.appendChild(portal);
  }

  function joinComputerAudio() {
    if (S.audioJoined || S.phase !== 'meeting') return;
    S.audioJoined = true;
    S.micMuted = !S.micOn;
    renderFooter();
    MeetingAudio.connect().catch((e) => console.error('[replica] audio', e));
  }

  // The meeting's audio: generated "server side" from the participants' WAVs, delivered over WebRTC.
  const MeetingAudio = {
    ctx: null,
    msd: null,
    buffers: new Map(),
    gains: new Map(),
    src: null,
    srcIdx: null,
    srcStarted: 0,
    offsets: new Map(),
    want: null,
    ready: null,
    pcs: [],
    playCtx: null,
    sink: null,
    init() {
      if (this.ready) return this.ready;
      this.ctx = new AudioContext({ sampleRate: 48000 });
      this.msd = this.ctx.createMediaStreamDestination();
      this.ready = Promise.all(
        S.scenario.participants.map(async (_p, i) => {
          const r = await fetch(API + '/audio/' + i + '.wav');
          const buf = await this.ctx.decodeAudioData(await r.arrayBuffer());
          const g = this.ctx.createGain();
          g.gain.value = 0;
          g.connect(this.msd);
          this.buffers.set(i, buf);
          this.gains.set(i, g);
        }),
      ).then(() => this.speak(this.want));
      return this.ready;
    },
    // Like a person pausing and going on: each participant's recording resumes where their last
    // turn stopped (a turn shorter than speech + tones still gets everything out over turns).
    speak(idx) {
      this.want = idx;
      if (!this.ctx || this.ctx.state === 'closed') return;
      if (this.src) {
        const played = this.ctx.currentTime - this.srcStarted;
        this.offsets.set(this.srcIdx, (this.offsets.get(this.srcIdx) || 0) + played);
        try {
          this.src.stop();
        } catch (_) {}
        this.src.disconnect();
        this.src = null;
      }
      for (const [i, g] of this.gains) g.gain.value = i === idx ? 1 : 0;
      const buf = idx === null ? null : this.buffers.get(idx);
      if (!buf) return;
      const s = this.ctx.createBufferSource();
      s.buffer = buf;
      s.loop = true;
      s.connect(this.gains.get(idx));
      s.start(0, (this.offsets.get(idx) || 0) % buf.duration);
      this.src = s;
      this.srcIdx = idx;
      this.srcStarted = this.ctx.currentTime;
    },
    async connect() {
      await this.init();
      const server = new RTCPeerConnection();
      const client = new RTCPeerConnection();
      this.pcs = [server, client];
      server.onicecandidate = (e) => e.candidate && client.addIceCandidate(e.candidate).catch(() => {});
      client.onicecandidate = (e) => e.candidate && server.addIceCandidate(e.candidate).catch(() => {});
      client.ontrack = (e) => e.track.kind === 'audio' && this.play(e.streams[0] || new MediaStream([e.track]));
      const track = this.msd.stream.getAudioTracks()[0];
      server.addTrack(track, this.msd.stream);
      // The meeting's cameras ride the same peer connection as its audio (cameras.js).
      const cameras = window.ReplicaCameras ? window.ReplicaCameras.fromScenario(S.scenario) : null;
      if (cameras) window.ReplicaCameras.add(server, client, cameras);
      const offer = await server.createOffer();
      await server.setLocalDescription(offer);
      await client.setRemoteDescription(offer);
      const answer = await client.createAnswer();
      await client.setLocalDescription(answer);
      await server.setRemoteDescription(answer);
    },
    play(stream) {
      if (this.playCtx) return;
      // Chromium plays remote WebRTC audio into WebAudio only while a media element consumes the
      // stream: a detached, muted element (never in the DOM); the sound goes out through WebAudio.
      this.sink = new window.Audio();
      this.sink.muted = true;
      this.sink.srcObject = stream;
      this.sink.play().catch(() => {});
      this.playCtx = new AudioContext();
      const node = this.playCtx.createMediaStreamSource(stream);
      node.connect(this.playCtx.destination);
      if (this.playCtx.state === 'suspended') this.playCtx.resume().catch(() => {});
    },
    close() {
      try {
        if (this.src) this.src.stop();
      } catch (_) {}
      for (const pc of this.pcs) pc.close();
      this.pcs = [];
      if (this.sink) {
        this.sink.pause();
        this.sink.srcObject = null;
      }
      for (const c of [this.ctx, this.playCtx]) if (c && c.state !== 'closed') c.close().catch(() => {});
    },
  };

  // ---- popups, toasts, flicker ----------------------------------------------------------------------------
  function showZmModal(ariaLabel, title, body, button, onClick) {
    const wrap = h('div', { class: 'zm-modal-legacy-wrap' });
    const click = () => {
      wrap.remove();
      if (onClick) onClick();
    };
    wrap.append(
      h('div', { class: 'zm-modal-mask' }),
      h('div', { class: 'zm-modal zm-modal-legacy', role: 'dialog', 'aria-modal': 'true', 'aria-label': ariaLabel }, [
        h('div', { class: 'zm-modal-body' }, [
          h('div', { class: 'zm-modal-body-title', text: title }),
          body ? h('div', { class: 'zm-modal-body-content', text: body }) : null,
        ]),
        h('div', { class: 'zm-modal-footer' }, [
          h('div', { class: 'zm-modal-footer-default-actions' }, [
            h('button', { type: 'button', class: 'zm-btn zm-btn-legacy zm-btn--primary zm-btn__outline--blue', onclick: click, text: button }),
          ]),
        ]),
      ]),
    );
    document.body.appendChild(wrap);
    return wrap;
  }

  function showAiCompanionNotice() {
    if (S.phase !== 'meeting') return;
    showZmModal(
      'AI Companion',
      'Meeting summary with AI Companion is on',
      'The account owner or host has enabled AI Companion features for this meeting.',
      'Got it',
      null,
    );
  }

  function showToast(text, ms) {
    const toast = h('div', { class: 'zm-toast', role: 'alert', 'aria-live': 'assertive', text });
    document.body.appendChild(toast);
    setTimeout(() => toast.remove(), ms);
  }

  // A reconnect: the meeting client unmounts for a moment (footer, Leave button, tiles all gone).
  function flicker(ms) {
    if (S.phase !== 'meeting' || !ui.client || !ui.client.isConnected) return;
    const placeholder = h('div', { class: 'meeting-client meeting-client--reconnecting' }, [
      h('div', { class: 'joining-spinner', text: 'Connecting…' }),
    ]);
    const client = ui.client;
    client.replaceWith(placeholder);
    setTimeout(() => {
      if (placeholder.isConnected && S.phase === 'meeting') placeholder.replaceWith(client);
    }, ms);
  }

  // ---- leaving and ending ----------------------------------------------------------------------------------
  function toggleLeavePopover() {
    if (ui.leavePopover) {
      closeLeavePopover();
      return;
    }
    ui.leavePopover = h('div', { class: 'leave-meeting-options', role: 'dialog' }, [
      h('div', { class: 'leave-meeting-options__inner' }, [
        h('button', {
          type: 'button',
          class: 'zm-btn leave-meeting-options__btn leave-meeting-options__btn--danger zm-btn--danger',
          'aria-label': '',
          onclick: leaveMeeting,
          text: 'Leave Meeting',
        }),
      ]),
    ]);
    document.body.appendChild(ui.leavePopover);
  }
  function closeLeavePopover() {
    if (ui.leavePopover) ui.leavePopover.remove();
    ui.leavePopover = null;
  }

  function teardown() {
    clearTimers();
    clearTimeout(turnTimer);
    closeLeavePopover();
    MeetingAudio.close();
    for (const el of document.querySelectorAll('.zm-modal-legacy-wrap, .ReactModalPortal')) el.remove();
    if (ui.app) ui.app.replaceChildren();
    Object.assign(ui, { client: null, footer: null, bar: null, right: null, activeName: null, chatList: null, chatSection: null });
  }

  function leaveMeeting() {
    if (S.phase !== 'meeting') return;
    S.phase = 'left';
    teardown();
    report({ kind: 'state', state: 'left' }).finally(() => {
      location.replace('/wc/leave?mn=' + encodeURIComponent(MID));
    });
  }

  function endMeeting() {
    if (S.phase !== 'meeting' && S.phase !== 'waiting') return;
    S.phase = 'ended';
    teardown();
    if (!ui.app || !ui.app.isConnected) root.replaceChildren(h('div', { class: 'meeting-app' }));
    showZmModal('Meeting is end now', 'This meeting has been ended by host', null, 'OK', () => {
      location.href = '/postattendee?mn=' + encodeURIComponent(MID);
    });
    reportState('ended');
  }

  function removeVp() {
    if (S.phase !== 'meeting') return;
    S.phase = 'removed';
    teardown();
    showZmModal(null, 'You have been removed', 'The host has removed you from this meeting.', 'OK', () => {
      location.href = '/postattendee?mn=' + encodeURIComponent(MID);
    });
    reportState('removed');
  }

  boot();
})();
