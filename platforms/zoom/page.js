// The Zoom driver's page scripts (platforms/zoom/driver.py calls each function on its own).
// Selectors and texts: shared/facts/web-clients.md §1, each with fallbacks.
(() => {
  const R = (s) => new RegExp(s, 'i');
  const txt = (el) => (el ? (el.innerText || el.textContent || '').trim() : '');
  const visible = (el) => !!el && el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== 'hidden';
  const first = (sels, root) => {
    for (const s of sels) { const el = (root || document).querySelector(s); if (el) return el; }
    return null;
  };
  const PASSCODE_ERRORS =
    '.preview-meeting-info-field-error, .error-msg, [role="alert"], .zm-form-item__error';

  return {
    // Everything the join loop needs, in one round trip. Text inside open shadow roots is
    // included: the React client's bot wall lives in one.
    joinState(re) {
      let text = document.body ? document.body.innerText : '';
      const frames = Array.from(document.querySelectorAll('iframe')).map((f) => f.src || '');
      const shadows = [];
      for (const el of document.querySelectorAll('*')) if (el.shadowRoot) shadows.push(el.shadowRoot);
      for (const sr of shadows) {
        text += '\n' + sr.textContent;
        for (const f of sr.querySelectorAll('iframe')) frames.push(f.src || '');
      }
      const modalTexts = Array.from(document.querySelectorAll(
        '.zm-modal, .zm-modal-legacy, [role="dialog"], [role="alertdialog"], .ReactModal__Content'
      )).map((el) => el.innerText || '').filter(Boolean);
      const name = first(['#input-for-name', '#inputname', 'input[placeholder="Your Name"]']);
      const pwd = first(['#input-for-pwd', '#inputpasscode', 'input[type="password"]']);
      const join = first(['button.preview-join-button', '#joinBtn',
                          'button.zm-btn.preview-join-button', 'button[type="submit"].zm-btn']);
      let pwdError = null;
      for (const el of document.querySelectorAll(PASSCODE_ERRORS)) {
        if (R(re.passcode).test(el.innerText || '')) {
          pwdError = {marked: el.dataset.vpSeen === '1'};
          break;
        }
      }
      const mic = document.querySelector('#preview-audio-control-button');
      const cam = document.querySelector('#preview-video-control-button');
      const dialogs = Array.from(document.querySelectorAll('.ReactModal__Content, [role="dialog"]'));
      const permission = dialogs.some((d) => Array.from(d.querySelectorAll('button')).some(
        (b) => /^(allow|use microphone( and camera)?)$/i.test((b.innerText || '').trim())));
      const landing = Array.from(document.querySelectorAll('a')).some(
        (a) => /join from your browser/i.test(a.innerText || ''));
      return {
        url: location.href,
        title: document.title,
        text: text.slice(0, 20000),
        modalTexts,
        captchaEl: frames.some((s) => /recaptcha/i.test(s)) ||
          !!document.querySelector('.component_smart_captcha, .CaptchaContainer'),
        prompt: (document.querySelector('#prompt') || {}).innerText || '',
        consent: visible(document.querySelector('#onetrust-accept-btn-handler')),
        terms: !!document.querySelector('#wc_agree1, #wc_agree2'),
        permission,
        landing,
        hasName: !!name,
        nameValue: name ? name.value : null,
        hasPwd: !!pwd && visible(pwd),
        pwdValue: pwd ? pwd.value : null,
        pwdError,
        join: !!join,
        joinDisabled: !!join && (join.disabled || join.classList.contains('disabled')),
        joinBusy: !!join && (join.classList.contains('loading') ||
                             /joining/i.test(join.innerText || '')),
        micOn: mic ? mic.getAttribute('aria-label') === 'Mute'
                   : !!document.querySelector('svg.SvgAudioMute'),
        camOn: cam ? cam.getAttribute('aria-label') === 'Stop Video'
                   : !!document.querySelector('svg.SvgVideoOn'),
        leave: !!document.querySelector('button[aria-label="Leave"]'),
        lobby: R(re.lobby).test(text),
      };
    },

    // One poll of the meeting: speaker, roster, chat rows, end signals, housekeeping needs.
    meetingState(re) {
      const leave = document.querySelector('button[aria-label="Leave"]');
      // Active speaker (speaker view, the thumbnail strip, single view, screen-share layouts).
      const speakerEl = first([
        '.speaker-active-container__video-frame .video-avatar__avatar-footer span',
        '.speaker-bar-container__video-frame--active .video-avatar__avatar-footer span',
        '.single-main-container__video-frame .video-avatar__avatar-footer span',
        '.single-suspension-container__video-frame .video-avatar__avatar-footer span',
      ]);
      // Roster: the participants pane when open, plus every video tile's name.
      const names = [];
      for (const li of document.querySelectorAll(
          'div[role="list"][aria-label^="participants" i] .participants-li, ' +
          '.participants-li[aria-label]')) {
        const label = li.getAttribute('aria-label') || '';
        const shown = txt(li.querySelector('.participants-item__display-name')) ||
          label.split(',')[0].replace(/\s*\((me|host|co-host|guest)\)\s*/gi, ' ').trim();
        const me = /\(me\)/i.test(label) ||
          /\(me\)/i.test(txt(li.querySelector('.participants-item__name-label')));
        if (shown && !me) names.push(shown);
      }
      for (const el of document.querySelectorAll('.video-avatar__avatar-footer span')) {
        const n = txt(el);
        if (n) names.push(n);
      }
      const counterEl = document.querySelector('.footer-button__number-counter');
      const counter = counterEl ? parseInt(txt(counterEl), 10) : NaN;
      // Chat rows (virtualised list: only some rows exist; ids are stable).
      const list = document.querySelector('div[role="application"][aria-label="Chat Message List"]');
      const chat = [];
      if (list) {
        let rows = Array.from(list.querySelectorAll('[role="row"]'));
        if (!rows.length) rows = Array.from(list.querySelectorAll('div[id^="chat-message-content"]'));
        let sender = null;
        for (const row of rows) {
          const content = row.querySelector('div[id^="chat-message-content"]') ||
            (row.id && row.id.startsWith('chat-message-content') ? row : null);
          const label = (content && content.getAttribute('aria-label')) ||
            row.getAttribute('aria-label') || '';
          const domSender = txt(row.querySelector('.chat-item__sender'));
          if (domSender) sender = domSender;
          let parsed = label.match(/^(.*?) to (.+?), (\d{1,2}:\d{2}(?:\s?[AP]M)?), ([\s\S]*)$/i) ||
            label.match(/^(.*?) to (.+?): ([\s\S]*)$/i);
          const body = row.querySelector('.chat-rtf-box__display, .new-chat-message__text-box');
          const who = parsed ? parsed[1] : sender;
          const text = body ? txt(body) : (parsed ? parsed[parsed.length - 1] : '');
          if (!who || !text) continue;
          chat.push({id: (content && content.id) || row.id || '', sender: who.trim(), text, label});
        }
      }
      // End signals: only modal dialogs, never toasts or role=alert banners.
      const modals = Array.from(document.querySelectorAll(
        '.zm-modal, .zm-modal-legacy, [role="dialog"], [role="alertdialog"], .ReactModal__Content, ' +
        '[aria-label="Meeting is end now"]'));
      let ended = null, removed = null, dismiss = false;
      for (const m of modals) {
        const t = txt(m);
        const buttons = Array.from(m.querySelectorAll('button'));
        if (m.matches('[aria-label="Meeting is end now"]') || R(re.ended).test(t)) {
          ended = t.slice(0, 200);
        } else if (R(re.removed).test(t)) {
          removed = t.slice(0, 200);
        } else if (!m.matches('.join-dialog, .leave-meeting-options') &&
                   buttons.some((b) => /^(got it|ok)$/i.test(txt(b)))) {
          dismiss = true;
        }
      }
      const audio = document.querySelector('button.join-audio-container__btn');
      const chatToggle = document.querySelector('button[aria-label$="the chat panel" i]');
      const partsToggle = document.querySelector('button[aria-label*="participants list" i]');
      return {
        url: location.href,
        title: document.title,
        inMeeting: !!leave,
        client: !!document.querySelector('.meeting-client, #wc-footer, .meeting-app'),
        speaker: txt(speakerEl),
        names,
        counter: Number.isFinite(counter) ? counter : null,
        chat,
        ended,
        removed,
        dismiss,
        audioLabel: audio ? (audio.getAttribute('aria-label') || txt(audio)) : null,
        audioDialog: !!document.querySelector('.join-audio-by-voip__join-btn') ||
          Array.from(document.querySelectorAll('button')).some(
            (b) => /^(join audio by computer|join with computer audio)$/i.test(txt(b))),
        chatOpen: chatToggle ? /^close/i.test(chatToggle.getAttribute('aria-label') || '') :
          !!document.querySelector('.chat-rtf-box__editor-outer [contenteditable="true"]'),
        partsOpen: partsToggle ? /^close/i.test(partsToggle.getAttribute('aria-label') || '') : true,
      };
    },

    // Click the first element (in selector order) whose text matches, with DOM click():
    // overlays that intercept pointer events (the pre-join form, popups, the hidden footer)
    // do not matter.
    click([sels, textRe]) {
      const re = textRe ? new RegExp(textRe, 'i') : null;
      for (const s of sels) {
        for (const el of document.querySelectorAll(s)) {
          if (re && !re.test((el.innerText || el.textContent || '').trim())) continue;
          if (el.disabled) continue;
          el.click();
          return true;
        }
      }
      return false;
    },

    // Mark the passcode errors shown now, so only a new one is the verdict after a retry.
    markPasscodeError(re) {
      for (const el of document.querySelectorAll(PASSCODE_ERRORS)) {
        if (R(re).test(el.innerText || '')) el.dataset.vpSeen = '1';
      }
    },

    // ProseMirror follows its contenteditable's DOM: execCommand('insertText') updates it (LMA).
    insertText([sels, text]) {
      let ed = null;
      for (const s of sels) { ed = document.querySelector(s); if (ed) break; }
      if (!ed) {
        const p = document.querySelector('p[data-placeholder="Type message here ..."]');
        ed = p && p.closest('[contenteditable="true"]');
      }
      if (!ed) return null;
      ed.focus();
      const sel = window.getSelection();
      sel.selectAllChildren(ed);
      document.execCommand('delete', false);
      document.execCommand('insertText', false, text);
      return (ed.innerText || '').replace(/\n+$/, '');
    },

    editorPresent(sels) {
      return sels.some((s) => document.querySelector(s));
    },

    leaveGone() {
      return !document.querySelector('button[aria-label="Leave"]');
    },
  };
})()
