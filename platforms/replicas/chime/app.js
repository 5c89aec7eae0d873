/*
 * Amazon Chime web app (app.chime.aws) replica: the guest path from /anonymousJoin to the meeting.
 *
 * Reproduces, from ../../../../shared/facts/web-clients.md §3 and lma.md §2 (Chime):
 *   - /meetings/<id> → /anonymousJoin (the id is not in the URL; see meetings.html);
 *   - name field #name and button.Button--enabled "Join meeting now" (enabled on key events only:
 *     CHX fills the name and then presses a key before it can click it); Tab+Enter also submits;
 *   - the AWS cookie banner (button[data-id="awsccc-cb-btn-accept"]) over the bottom of the page;
 *   - device setup: div[data-test-id="DeviceSetupJoinMutedCheckbox"] input (a styled, visually
 *     hidden checkbox under its "Join muted" label), DeviceSetupVoiceFocusCheckbox, and
 *     button[data-testid="button"][aria-label="Join"] (= data-test-id="DevicePreviewJoinBtn"),
 *     "DevicePreviewJoinWithVideo";
 *   - in the meeting: nav[data-testid="control-bar"], button#audio "Unmute my microphone",
 *     toggles "Open chat panel"/"Close chat panel" and "Open attendees panel"/"Close attendees
 *     panel" whose labels flip, button#endMeeting, the chat list ._2B9DdDvc2PdUbvEGXfOU20 with
 *     h3[data-testid="chat-bubble-sender-name"] (left out on grouped follow-ups) and .Linkify,
 *     system sender "Amazon Chime", textarea[data-testid="textarea"][placeholder="Message all
 *     attendees"] sent with Enter, the roster's button[data-testid="collapse-container"]
 *     [aria-label^="Present"] count, and the active speaker .activeSpeakerCell
 *     ._3yg3rB2Xb_sfSzRXkm8QT- ("No one" when idle; its text node changes in place);
 *   - "Your meeting has ended"; #endMeeting gone once the meeting is over;
 *   - remote audio as one mixed stream on <audio id="audio-speaker-element"> (common/mixed-audio.js).
 * From the Amazon Chime user guide: anonymous guests wait in the Waiting Room (a dialog over the
 * device preview saying their request to join was received) until admitted or denied; a
 * moderated meeting does not start until a moderator enters the moderator passcode (the
 * scenario's passcode); meetings can be restricted to signed-in users. From a public Chime
 * userscript: the chat bubble structure (.chatBubbleContainer > .chatMessage, header
 * ._28K_fURZjQdxAmV_LRDwpp with the time .BSI7kBrZFl9kIe5WtRekW) and the attendee sections
 * (._1IEUbelvxVpEblfF0Mula8, names .ppi5x8cvVEQgbl_hLeiRW, "Present"/"Left" headers).
 * Replica inventions (no source gives them; kept plausible): the error/end/removed texts other
 * than "Your meeting has ended", the AWS WAF captcha page, the leave confirmation, #video.
 *
 * Scenario: /__replica/m/<id>/scenario; commands polled every 300 ms; reports POSTed (see
 * platforms/replicas/server.py). Extra command kinds: toast {text?, flicker_ms?} (a transient
 * alert while the control bar re-mounts), and reports: state not_found, login_required,
 * captcha, moderator_passcode, wrong_passcode, denied.
 */
(function () {
  'use strict';

  const ID_KEY = 'chime.anonymousJoin.meetingId';
  let meetingId = null;
  try {
    meetingId = sessionStorage.getItem(ID_KEY);
  } catch (e) {}
  const base = meetingId ? '/__replica/m/' + encodeURIComponent(meetingId) : null;
  const root = document.getElementById('root');
  const SYSTEM = 'Amazon Chime';

  let scenario = null;
  const st = {
    view: 'loading',
    name: '',
    joinMuted: false,
    video: false,
    muted: false,
    chatOpen: false,
    rosterOpen: false,
    draft: '',
    unread: 0,
    messages: [], // {sender, text, time, own}
    people: [], // {name, index, present}
    speaking: -1,
    decision: null, // an admit/deny that came before the lobby
    pending: [], // meeting commands that came before the meeting
    timers: [],
    turnTimer: null,
  };
  let audio = null;
  let ui = null; // the meeting's live nodes

  // -- helpers ----------------------------------------------------------------------------
  const h = window.ReplicaKit.makeH();

  window.__replicaUplink = { micOn: () => st.view === 'meeting' && !st.muted, report: (b) => report(b) };
  function report(body) {
    if (base) window.ReplicaKit.report(base, body);
  }

  function setState(state) {
    report({ kind: 'state', state: state });
  }

  function prettyId(id) {
    return /^\d{10}$/.test(id) ? id.slice(0, 4) + ' ' + id.slice(4, 6) + ' ' + id.slice(6) : id;
  }

  function clock() {
    return new Date().toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
  }

  function later(seconds, fn) {
    window.ReplicaKit.later(st.timers, seconds, fn);
  }

  function show(view, node) {
    st.view = view;
    root.replaceChildren(node);
  }

  function button(label, attrs, onclick) {
    return h(
      'button',
      Object.assign({ type: 'button', 'data-testid': 'button', class: 'Button' }, attrs || {}, {
        onclick: onclick,
      }),
      label
    );
  }

  // -- AWS cookie consent (awsccc) ----------------------------------------------------------
  function cookieBanner() {
    const holder = document.getElementById('awsccc-cb-container');
    const close = function () {
      holder.replaceChildren();
    };
    const banner = h(
      'div',
      { id: 'awsccc-cb-content', class: 'awsccc-cb-content', role: 'region', 'aria-label': 'Cookie banner' },
      h('div', { class: 'awsccc-cb-title', text: 'Select your cookie preferences' }),
      h('p', {
        text:
          'We use essential cookies and similar tools that are necessary to provide our site and ' +
          'services. We use performance cookies to collect anonymous statistics, so we can ' +
          'understand how customers use our site and make improvements.',
      }),
      h(
        'div',
        { class: 'awsccc-cb-actions' },
        h('button', { type: 'button', 'data-id': 'awsccc-cb-btn-accept', class: 'awsccc-u-btn awsccc-u-btn-primary', onclick: close }, 'Accept'),
        h('button', { type: 'button', 'data-id': 'awsccc-cb-btn-decline', class: 'awsccc-u-btn', onclick: close }, 'Decline'),
        h('button', { type: 'button', 'data-id': 'awsccc-cb-btn-customize', class: 'awsccc-u-btn' }, 'Customize')
      )
    );
    setTimeout(function () {
      holder.replaceChildren(banner);
    }, 700);
  }

  // -- pre-join views -------------------------------------------------------------------------
  function page(title, body) {
    return h(
      'div',
      { class: 'AnonymousJoin' },
      h('header', { class: 'AnonymousJoin__header' }, h('span', { class: 'ChimeLogo', text: 'Amazon Chime' })),
      h('main', { class: 'AnonymousJoin__card' }, h('h1', { 'data-testid': 'heading', text: title }), body)
    );
  }

  function notFoundView() {
    show(
      'not_found',
      page(
        'Meeting not found',
        h(
          'div',
          null,
          h('p', { class: 'ErrorMessage', role: 'alert', text: 'This meeting ID isn’t valid. Check the meeting ID and try again.' }),
          meetingId ? h('p', { text: 'Meeting ID: ' + prettyId(meetingId) }) : null
        )
      )
    );
    setState('not_found');
  }

  function loginView() {
    show(
      'login_required',
      page(
        'Sign in to join this meeting',
        h(
          'div',
          null,
          h('p', {
            text: 'This meeting is only open to registered Amazon Chime users. Sign in with your Amazon Chime account to join.',
          }),
          h('a', { href: '#signin', class: 'Button Button--primary', role: 'button' }, 'Sign in')
        )
      )
    );
    setState('login_required');
  }

  function nameView() {
    const input = h('input', {
      id: 'name',
      name: 'name',
      type: 'text',
      autocomplete: 'name',
      maxlength: '64',
      placeholder: 'Your name',
      'aria-label': 'Your name',
    });
    const submit = h('button', { type: 'submit', class: 'Button Button--primary Button--disabled', disabled: true }, 'Join meeting now');
    // The app validates the name from keyboard events; a value set without key events leaves
    // the button disabled (CHX presses a key after filling the field).
    const refresh = function () {
      const ok = input.value.trim().length > 0;
      submit.disabled = !ok;
      submit.className = 'Button Button--primary ' + (ok ? 'Button--enabled' : 'Button--disabled');
    };
    input.addEventListener('keyup', refresh);
    const form = h(
      'form',
      {
        class: 'NameForm',
        novalidate: true,
        onsubmit: function (ev) {
          ev.preventDefault();
          if (submit.disabled) return;
          st.name = input.value.trim();
          if (!st.name) return;
          submit.disabled = true;
          setTimeout(scenario.captcha ? captchaView : deviceView, 500);
        },
      },
      h('p', { class: 'MeetingIdLine', 'data-test-id': 'meetingIdRegion', text: 'Meeting ID: ' + prettyId(meetingId) }),
      h('label', { for: 'name', text: 'Enter your name to join as a guest' }),
      input,
      submit,
      h('p', { class: 'Fine', text: 'Have an Amazon Chime account? ' }, h('a', { href: '#signin', text: 'Sign in' }))
    );
    show('name', page('Join a meeting', form));
    setState('prejoin');
  }

  function captchaView() {
    show(
      'captcha',
      h(
        'div',
        { id: 'captcha-container', class: 'amzn-captcha-modal', role: 'dialog', 'aria-modal': 'true' },
        h('h1', { text: 'Let’s confirm you are human' }),
        h('p', {
          text: 'Complete the security check before continuing. This step verifies that you are not a bot, which helps defend against spam and abuse.',
        }),
        h('button', { type: 'button', class: 'amzn-captcha-verify-button' }, 'Begin')
      )
    );
    setState('captcha');
  }

  function checkbox(testId, label, checked, onchange) {
    const input = h('input', { type: 'checkbox', class: 'Checkbox__input', onchange: onchange });
    input.checked = checked;
    return h(
      'div',
      { class: 'Checkbox', 'data-test-id': testId },
      h('label', { class: 'Checkbox__label' }, input, h('span', { class: 'Checkbox__box', 'aria-hidden': 'true' }), h('span', { text: label }))
    );
  }

  function deviceView() {
    // The preview asks for the devices (the meter); failures do not block joining.
    try {
      navigator.mediaDevices.getUserMedia({ audio: true }).then(
        function (s) {
          st.previewStream = s;
        },
        function () {}
      );
    } catch (e) {}
    const muted = checkbox('DeviceSetupJoinMutedCheckbox', 'Join muted', false, function (ev) {
      st.joinMuted = ev.target.checked;
    });
    const focus = checkbox('DeviceSetupVoiceFocusCheckbox', 'Use Voice Focus to reduce background noise', false, function () {});
    const join = function (withVideo) {
      return function () {
        if (st.view !== 'device') return;
        st.video = withVideo;
        st.joinMuted = muted.querySelector('input').checked;
        afterDeviceJoin();
      };
    };
    const node = h(
      'div',
      { class: 'DeviceSetup', role: 'dialog', 'aria-label': 'Device setup' },
      h(
        'div',
        { class: 'DeviceSetup__body' },
        h('h1', { 'data-testid': 'heading', text: 'Choose your audio and video settings' }),
        h('p', { text: 'Joining as ' + st.name }),
        h('div', { class: 'DevicePreview', 'aria-hidden': 'true' }, h('div', { class: 'DevicePreview__video', text: 'Camera is off' })),
        h('label', { class: 'Select' }, 'Microphone', h('select', { 'aria-label': 'Microphone' }, h('option', { text: 'Default' }))),
        h('label', { class: 'Select' }, 'Speaker', h('select', { 'aria-label': 'Speaker' }, h('option', { text: 'Default' }))),
        muted,
        focus
      ),
      h(
        'div',
        { class: 'DeviceSetup__footer' },
        button('Join with video', { 'data-test-id': 'DevicePreviewJoinWithVideo', 'aria-label': 'Join with video', class: 'Button Button--secondary' }, join(true)),
        button('Join', { 'data-test-id': 'DevicePreviewJoinBtn', 'aria-label': 'Join', class: 'Button Button--primary Button--enabled' }, join(false))
      )
    );
    show('device', h('div', { class: 'DeviceSetupPage' }, node));
  }

  function overlay(node) {
    const wrap = h('div', { class: 'ModalBackdrop' }, node);
    root.appendChild(wrap);
    return wrap;
  }

  function modal(title, body) {
    return h(
      'div',
      { class: 'Modal', role: 'dialog', 'aria-modal': 'true', 'data-testid': 'modal', 'aria-label': title },
      h('h2', { class: 'Modal__title', text: title }),
      h('div', { 'data-testid': 'modal-body', class: 'Modal__body' }, body)
    );
  }

  function afterDeviceJoin() {
    if (scenario.passcode) moderatorDialog();
    else lobbyOrJoin();
  }

  function moderatorDialog() {
    st.view = 'moderator';
    const error = h('p', { class: 'ErrorMessage', role: 'alert', hidden: true });
    const field = h('input', {
      id: 'moderatorPasscode',
      type: 'password',
      inputmode: 'numeric',
      autocomplete: 'off',
      placeholder: 'Moderator passcode',
      'aria-label': 'Moderator passcode',
    });
    const form = h(
      'form',
      {
        class: 'PasscodeForm',
        hidden: true,
        onsubmit: function (ev) {
          ev.preventDefault();
          if (field.value === scenario.passcode) {
            wrap.remove();
            lobbyOrJoin();
          } else {
            error.textContent = 'Incorrect moderator passcode. Try again.';
            error.hidden = false;
            field.value = '';
            setState('wrong_passcode');
          }
        },
      },
      field,
      h('button', { type: 'submit', 'data-testid': 'button', class: 'Button Button--primary' }, 'Submit')
    );
    const wrap = overlay(
      modal(
        'This meeting hasn’t started',
        h(
          'div',
          null,
          h('p', { text: 'The meeting won’t start until a moderator joins. If you’re a moderator, enter the moderator passcode to start the meeting.' }),
          button('Enter moderator passcode', { class: 'Button Button--secondary' }, function () {
            form.hidden = false;
            field.focus();
          }),
          form,
          error
        )
      )
    );
    setState('moderator_passcode');
  }

  function lobbyOrJoin() {
    const s = scenario;
    if (s.manual_admission || s.waiting_room_s !== null || s.deny) waitingRoom();
    else admitted();
  }

  function waitingRoom() {
    st.view = 'waiting';
    st.lobby = overlay(
      modal(
        'Waiting Room',
        h(
          'div',
          null,
          h('p', { class: 'WaitingRoom__status', text: 'Your request to join the meeting has been received.' }),
          h('p', { text: 'You’ll join as soon as someone in the meeting admits you. You can wait here for up to 10 minutes.' }),
          h(
            'div',
            { class: 'Modal__actions' },
            button('Sign in', { class: 'Button Button--secondary' }),
            button('Enter moderator passcode', { class: 'Button Button--secondary' })
          )
        )
      )
    );
    setState('lobby');
    if (st.decision) {
      const d = st.decision;
      st.decision = null;
      setTimeout(function () {
        decide(d);
      }, 300);
    } else if (!scenario.manual_admission) {
      later(scenario.waiting_room_s !== null && scenario.waiting_room_s !== undefined ? scenario.waiting_room_s : 1, function () {
        decide(scenario.deny ? 'deny' : 'admit');
      });
    }
  }

  function decide(kind) {
    if (st.view !== 'waiting') return;
    if (st.lobby) st.lobby.remove();
    st.lobby = null;
    if (kind === 'admit') {
      admitted();
      return;
    }
    show(
      'denied',
      page(
        'You weren’t admitted',
        h(
          'div',
          null,
          h('p', { class: 'ErrorMessage', role: 'alert', text: 'Your request to join the meeting was denied.' }),
          h('p', { text: 'Contact the meeting host if you believe this is a mistake.' })
        )
      )
    );
    setState('denied');
  }

  // -- the meeting ----------------------------------------------------------------------------
  function controlButton(attrs, label) {
    return h('button', Object.assign({ type: 'button', 'data-testid': 'button', class: 'ControlBarButton' }, attrs), h('span', { class: 'ControlBarButton__label', text: label }));
  }

  function admitted() {
    st.muted = st.joinMuted;
    st.people = scenario.participants.map(function (p, i) {
      return { name: p.name, index: i, present: true };
    });
    const speakerText = document.createTextNode('No one');
    const micBtn = controlButton({ id: 'audio', onclick: toggleMute }, 'Mute');
    const videoBtn = controlButton({ id: 'video', onclick: toggleVideo }, 'Video');
    const rosterBtn = controlButton({ onclick: toggleRoster }, 'Attendees');
    const chatBtn = controlButton({ onclick: toggleChat }, 'Chat');
    const leaveBtn = controlButton({ id: 'endMeeting', class: 'ControlBarButton ControlBarButton--danger', 'aria-label': 'Leave meeting', onclick: confirmLeave }, 'Leave');
    const bar = h('nav', { 'data-testid': 'control-bar', class: 'ControlBar', 'aria-label': 'Meeting controls' }, micBtn, videoBtn, rosterBtn, chatBtn, leaveBtn);
    const side = h('div', { class: 'SidePanels' });
    const grid = h('div', { class: 'ContentGrid' });
    const audioEl = h('audio', { id: 'audio-speaker-element', autoplay: true, class: 'hidden' });
    const toasts = h('div', { class: 'Toasts', 'aria-live': 'assertive' });
    const view = h(
      'div',
      { class: 'MeetingView' },
      h(
        'header',
        { class: 'MeetingHeader' },
        h('h1', { 'data-testid': 'heading', text: 'Meeting ' + prettyId(meetingId) }),
        h('span', { 'data-test-id': 'meetingIdRegion', text: 'Meeting ID: ' + prettyId(meetingId) })
      ),
      h(
        'div',
        { class: 'MeetingBody' },
        h(
          'main',
          { class: 'Stage' },
          h('div', { class: 'activeSpeakerCell' }, h('span', { class: 'activeSpeakerCell__label', text: 'Active speaker' }), h('div', { class: '_3yg3rB2Xb_sfSzRXkm8QT-' }, speakerText)),
          grid
        ),
        side
      ),
      bar,
      toasts,
      audioEl
    );
    ui = { view, bar, side, grid, speakerText, micBtn, videoBtn, rosterBtn, chatBtn, leaveBtn, audioEl, toasts, chat: null, roster: null };
    show('meeting', view);
    refreshControls();
    renderGrid();
    setState('joined');
    addMessage(SYSTEM, 'Messages you send here are visible to everyone in the meeting.', false, true);
    if (scenario.post_join_modal) {
      const wrap = overlay(
        modal(
          'This meeting is being recorded',
          h(
            'div',
            null,
            h('p', { text: 'By staying in this meeting, you consent to being recorded.' }),
            button('OK', { class: 'Button Button--primary', 'aria-label': 'OK' }, function () {
              wrap.remove();
            })
          )
        )
      );
    }
    // Scenario clock: seconds after admission.
    later(scenario.end_after_s, function () {
      finish('ended');
    });
    later(scenario.remove_after_s, function () {
      finish('removed');
    });
    later(scenario.everyone_leaves_after_s, function () {
      for (const p of st.people) if (p.present) participantLeaves(p.name, true);
      rosterChanged();
    });
    for (const line of scenario.chat) {
      later(line.at_s, function () {
        addMessage(line.sender, line.text, false);
      });
    }
    const queued = st.pending;
    st.pending = [];
    for (const c of queued) meetingCommand(c);
    startAudio();
  }

  async function startAudio() {
    if (!st.people.length) return;
    audio = new window.MixedMeetingAudio(meetingId, st.people.length, scenario);
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
    audio.bindAudioElement(ui.audioEl);
    nextTurn();
  }

  function presentIndexes() {
    return st.people.filter((p) => p.present).map((p) => p.index);
  }

  function nextTurn() {
    clearTimeout(st.turnTimer);
    setSpeaker(window.ReplicaKit.nextSpeaker(presentIndexes(), st.speaking));
  }

  function setSpeaker(i) {
    clearTimeout(st.turnTimer);
    st.turnTimer = null;
    if (!ui) return;
    if (audio) audio.setSpeaker(i);
    const changed = i !== st.speaking;
    st.speaking = i;
    // The client mutates the name's text node in place (LMA observes characterData).
    ui.speakerText.data = i < 0 ? 'No one' : st.people[i].name;
    for (const tile of ui.grid.children) tile.classList.toggle('Tile--speaking', Number(tile.dataset.index) === i);
    if (changed && i >= 0) report({ kind: 'speaker', name: st.people[i].name });
    if (i >= 0) st.turnTimer = setTimeout(nextTurn, scenario.speak_turn_s * 1000);
  }

  function renderGrid() {
    ui.grid.replaceChildren.apply(
      ui.grid,
      st.people
        .filter((p) => p.present)
        .map((p) => h('div', { class: 'Tile' + (p.index === st.speaking ? ' Tile--speaking' : ''), 'data-index': p.index }, h('span', { class: 'Tile__name', text: p.name })))
    );
  }

  function refreshControls() {
    ui.micBtn.setAttribute('aria-label', st.muted ? 'Unmute my microphone' : 'Mute my microphone');
    ui.videoBtn.setAttribute('aria-label', st.video ? 'Turn off my video' : 'Turn on my video');
    ui.rosterBtn.setAttribute('aria-label', st.rosterOpen ? 'Close attendees panel' : 'Open attendees panel');
    let chatLabel = st.chatOpen ? 'Close chat panel' : 'Open chat panel';
    if (!st.chatOpen && st.unread) chatLabel += ', ' + st.unread + (st.unread === 1 ? ' unread message' : ' unread messages');
    ui.chatBtn.setAttribute('aria-label', chatLabel);
  }

  function toggleMute() {
    st.muted = !st.muted;
    refreshControls();
  }

  function toggleVideo() {
    st.video = !st.video;
    refreshControls();
  }

  // Side panels are mounted only while open (the chat list is not in the DOM when closed).
  function toggleRoster() {
    st.rosterOpen = !st.rosterOpen;
    if (st.rosterOpen) {
      ui.roster = h('aside', { class: 'RosterPanel', 'aria-label': 'Attendees' });
      ui.side.prepend(ui.roster);
      renderRoster();
    } else if (ui.roster) {
      ui.roster.remove();
      ui.roster = null;
    }
    refreshControls();
  }

  function section(title, names, extraClass) {
    return h(
      'div',
      { class: '_1IEUbelvxVpEblfF0Mula8 ' + extraClass },
      h(
        'button',
        { type: 'button', 'data-testid': 'collapse-container', 'aria-expanded': 'true', 'aria-label': title + ' ' + names.length },
        h('span', { class: 'Collapse__title', text: title }),
        ' ',
        h('span', { class: 'Collapse__count', text: String(names.length) })
      ),
      h(
        'ul',
        { role: 'list' },
        ...names.map((n) => h('li', { class: 'RosterItem' }, h('span', { class: 'ppi5x8cvVEQgbl_hLeiRW', text: n })))
      )
    );
  }

  function renderRoster() {
    if (!ui || !ui.roster) return;
    const present = [st.name].concat(st.people.filter((p) => p.present).map((p) => p.name));
    const left = st.people.filter((p) => !p.present).map((p) => p.name);
    const nodes = [h('h2', { class: 'Panel__title', text: 'Attendees' }), section('Present', present, 'RosterSection--present')];
    if (left.length) nodes.push(section('Left', left, 'RosterSection--left'));
    ui.roster.replaceChildren.apply(ui.roster, nodes);
  }

  function rosterChanged() {
    renderRoster();
    renderGrid();
  }

  function participantLeaves(name, quiet) {
    const p = st.people.find((q) => q.name === name && q.present);
    if (!p) return;
    p.present = false;
    toast(name + ' left the meeting.', 0);
    if (!quiet) rosterChanged();
    if (st.speaking === p.index) nextTurn();
  }

  function toggleChat() {
    st.chatOpen = !st.chatOpen;
    if (st.chatOpen) {
      st.unread = 0;
      const list = h('div', { class: '_2B9DdDvc2PdUbvEGXfOU20', role: 'log', 'aria-label': 'Chat messages' });
      const ta = h('textarea', {
        'data-testid': 'textarea',
        placeholder: 'Message all attendees',
        'aria-label': 'Message all attendees',
        rows: '1',
      });
      ta.value = st.draft; // controlled: the DOM shows the app's model
      // The app's model follows input events; Enter sends the MODEL, not the DOM value.
      ta.addEventListener('input', function () {
        st.draft = ta.value;
      });
      ta.addEventListener('keydown', function (ev) {
        if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing) return;
        ev.preventDefault();
        const text = st.draft.trim();
        st.draft = '';
        ta.value = '';
        if (!text) return;
        report({ kind: 'chat', sender: st.name, text: text });
        addMessage(st.name, text, true);
      });
      ui.chat = h('aside', { class: 'ChatPanel', 'aria-label': 'Chat' }, h('h2', { class: 'Panel__title', text: 'Chat' }), list, h('div', { class: 'ChatInput' }, ta));
      ui.chatList = list;
      ui.side.appendChild(ui.chat);
      let prev = null;
      for (const m of st.messages) {
        list.appendChild(bubble(m, prev));
        prev = m;
      }
    } else if (ui.chat) {
      ui.chat.remove();
      ui.chat = null;
      ui.chatList = null;
    }
    refreshControls();
  }

  function linkify(text) {
    const span = h('span', { class: 'Linkify' });
    const parts = text.split(/(https?:\/\/[^\s]+)/g);
    for (const part of parts) {
      if (!part) continue;
      if (/^https?:\/\//.test(part)) span.appendChild(h('a', { href: part, target: '_blank', rel: 'noopener noreferrer', text: part }));
      else span.appendChild(document.createTextNode(part));
    }
    return span;
  }

  // Consecutive messages from one sender are grouped: only the first shows the sender.
  function bubble(m, prev) {
    const grouped = prev && prev.sender === m.sender && m.at - prev.at < 120000;
    return h(
      'div',
      { class: 'chatBubbleContainer' + (m.own ? ' chatBubbleContainer--own' : '') },
      h(
        'div',
        { class: 'chatMessage' },
        grouped
          ? null
          : h(
              'div',
              { class: '_28K_fURZjQdxAmV_LRDwpp' },
              h('h3', { 'data-testid': 'chat-bubble-sender-name', text: m.sender }),
              h('span', { class: 'BSI7kBrZFl9kIe5WtRekW', text: m.time })
            ),
        h('div', { class: 'markdown' }, linkify(m.text))
      )
    );
  }

  function addMessage(sender, text, own, quiet) {
    const m = { sender: sender, text: text, time: clock(), at: Date.now(), own: !!own };
    const prev = st.messages[st.messages.length - 1] || null;
    st.messages.push(m);
    if (st.view !== 'meeting') return;
    if (ui.chatList) {
      ui.chatList.appendChild(bubble(m, prev));
      ui.chatList.scrollTop = ui.chatList.scrollHeight;
    } else if (!own && !quiet) {
      st.unread++;
      refreshControls();
    }
  }

  function toast(text, flickerMs) {
    if (!ui) return;
    const mine = ui;
    const t = h('div', { class: 'Toast', role: 'alert', text: text });
    mine.toasts.appendChild(t);
    setTimeout(function () {
      t.remove();
    }, 3000);
    if (flickerMs > 0 && mine.bar.isConnected) {
      // A reconnect re-mounts the control bar: it is briefly gone.
      mine.bar.remove();
      setTimeout(function () {
        if (ui === mine) mine.view.insertBefore(mine.bar, mine.toasts);
      }, flickerMs);
    }
  }

  function confirmLeave() {
    if (st.view !== 'meeting' || root.querySelector('.LeaveDialog')) return;
    const wrap = overlay(
      h(
        'div',
        { class: 'Modal LeaveDialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Leave meeting' },
        h('h2', { class: 'Modal__title', text: 'Leave meeting?' }),
        h(
          'div',
          { class: 'Modal__actions' },
          button('Cancel', { class: 'Button Button--secondary' }, function () {
            wrap.remove();
          }),
          button('Leave meeting', { class: 'Button Button--danger' }, function () {
            finish('left');
          })
        )
      )
    );
  }

  function finish(kind) {
    if (st.view !== 'meeting') return;
    for (const t of st.timers) clearTimeout(t);
    clearTimeout(st.turnTimer);
    if (audio) audio.stop();
    audio = null;
    ui = null;
    const texts = {
      ended: ['Your meeting has ended', 'The host ended the meeting for everyone.'],
      removed: ['You’ve been removed from the meeting', 'A meeting host removed you from this meeting.'],
      left: ['You left the meeting', 'Thanks for using Amazon Chime.'],
    }[kind];
    show(
      kind,
      h(
        'div',
        { class: 'MeetingEnded' },
        h('h1', { 'data-testid': 'heading', text: texts[0] }),
        h('p', { text: texts[1] }),
        h('a', { href: '/meetings/' + encodeURIComponent(meetingId), class: 'Button Button--secondary', role: 'button' }, 'Rejoin')
      )
    );
    setState(kind);
  }

  // -- test commands --------------------------------------------------------------------------
  function meetingCommand(c) {
    switch (c.kind) {
      case 'chat':
        addMessage(String(c.sender || 'Someone'), String(c.text || ''), false);
        break;
      case 'end':
        finish('ended');
        break;
      case 'remove':
        finish('removed');
        break;
      case 'leave':
        participantLeaves(String(c.name || ''), false);
        break;
      case 'speak': {
        const p = st.people.find((q) => q.name === c.name && q.present);
        if (p) setSpeaker(p.index);
        break;
      }
      case 'toast':
        toast(String(c.text || 'Your connection is unstable. Trying to reconnect…'), c.flicker_ms === undefined ? 1200 : Number(c.flicker_ms));
        break;
      default:
        break;
    }
  }

  function apply(c) {
    if (c.kind === 'admit' || c.kind === 'deny') {
      if (st.view === 'waiting') decide(c.kind);
      else if (['loading', 'name', 'device', 'moderator', 'captcha'].includes(st.view)) st.decision = c.kind;
      return;
    }
    if (st.view === 'meeting') meetingCommand(c);
    else if (['loading', 'name', 'device', 'moderator', 'waiting'].includes(st.view)) st.pending.push(c);
  }

  // -- boot -----------------------------------------------------------------------------------
  async function boot() {
    cookieBanner();
    if (!base) {
      setTimeout(notFoundView, 300);
      return;
    }
    try {
      const r = await fetch(base + '/scenario', { cache: 'no-store' });
      if (r.ok) scenario = await r.json();
    } catch (e) {}
    // The SPA shows its spinner while it looks the meeting up.
    await new Promise((resolve) => setTimeout(resolve, 400));
    if (!scenario || scenario.not_found) {
      notFoundView();
      return;
    }
    window.ReplicaKit.pollCommands(base, apply);
    if (scenario.login_required) loginView();
    else nameView();
  }

  boot();
})();
