// The Teams driver's page scripts (platforms/teams/driver.py calls each function on its own).
// Selectors and texts: shared/facts/web-clients.md §2.
(() => {
  const firstVis = (sels) => {
    for (const s of sels) for (const e of qa(s)) if (vis(e)) return e;
    return null;
  };
  const label = (e) => ((e.getAttribute('aria-label') || '') + ' ' + (e.innerText || e.value || '')).trim();
  const buttons = () => qa('button, [role="button"], a[role="link"], input[type="submit"]').filter(vis);
  const inMeetingSels = ['#hangup-button', '[data-inp="hangup-button"]', 'button[data-tid="hangup-main-btn"]',
    'button[aria-label="Leave (Ctrl+Shift+H)"]', '#callingButtons-showMoreBtn', '[data-tid="calling-toolbar"]'];
  const nameSels = ['input[data-tid="prejoin-display-name-input"]', '#prejoin-display-name',
    'input[placeholder="Type your name"]'];
  const findName = () => firstVis(nameSels) ||
    qa('input[placeholder*="name" i]').filter(vis).find((e) => !/passcode|meeting id/i.test(e.placeholder)) || null;
  const findPasscode = () => qa('input').filter(vis).find((e) =>
    /passcode|password/i.test((e.placeholder || '') + ' ' + (e.getAttribute('aria-label') || '')) &&
    e.name !== 'loginfmt') || null;
  const findJoin = () => {
    const e = q('[data-tid="prejoin-join-button"]');
    if (e) return e;
    return buttons().find((b) => /^(join now|join|ask to join)$/i.test((b.innerText || '').trim())) || null;
  };
  const findContinue = () => buttons().find((b) => {
    const a = (b.getAttribute('aria-label') || '').trim();
    const t = (b.innerText || '').trim();
    if (b.getAttribute('data-tid') === 'joinOnWeb') return true;
    if (/^(continue on this browser|join meeting from this browser|join on this browser|join on the web instead)$/i.test(a)) return true;
    return t.length < 60 && /^(continue on this browser|join on the web instead|continue in this browser)$/i.test(t);
  }) || null;
  const findAvContinue = () => buttons().find((b) => /^continue without audio or video$/i.test((b.innerText || '').trim())) || null;
  const findCookieAccept = () => {
    const banner = firstVis(['#wcpConsentBannerCtrl', '[id*="cookie" i]', '[class*="cookie-banner" i]', '#onetrust-banner-sdk']);
    if (!banner) return null;
    return qa('button', banner).filter(vis).find((b) => /^(accept|accept all|allow all|ok)$/i.test((b.innerText || '').trim())) || null;
  };
  const retryTitle = () => {
    const e = q('#calling-retry-screen-title');
    return e && vis(e) ? (e.innerText || '').trim() : null;
  };

  return {
    // Everything the join loop needs, in one round trip.
    joinState() {
      const name = findName();
      const join = findJoin();
      const pass = findPasscode();
      const body = document.body;
      return {
        url: location.href,
        host: location.hostname,
        text: body ? (body.innerText || '').slice(0, 6000) : '',
        empty: !body || !(body.innerText || '').trim(),
        captcha: !!q('[data-tid="HIP-Captcha-Image"], iframe[src*="captcha" i], img[alt*="captcha" i]'),
        loginField: !!q('input[name="loginfmt"]'),
        retryTitle: retryTitle(),
        e2ee: !!q('[data-tid="calling-e2ee-end-screen"]'),
        avModal: !!findAvContinue(),
        cookie: !!findCookieAccept(),
        continueBtn: !!findContinue(),
        passcode: pass && pass !== name ? true : false,
        name: name ? { value: name.value } : null,
        join: join && vis(join) ? { disabled: !!join.disabled || join.getAttribute('aria-disabled') === 'true' } : null,
        inMeeting: !!firstVis(inMeetingSels),
      };
    },

    // One poll of the meeting: controls, end screens, roster, speakers, chat.
    meetingState() {
      const body = document.body;
      const controls = !!firstVis(inMeetingSels);
      // stage tiles: the data-tid of [data-stream-type] is the display name
      const names = [];
      const add = (n) => { n = (n || '').trim(); if (n && !names.includes(n)) names.push(n); };
      for (const e of qa('[data-stream-type][data-tid]')) {
        if (e.getAttribute('data-stream-type') !== 'ScreenSharing') add(e.getAttribute('data-tid'));
      }
      for (const e of qa('[data-tid="stage-layout"] [data-tid="participant-info-nametag"]')) add(e.innerText);
      for (const e of qa('[data-cid="roster-participant"][aria-label]')) add(e.getAttribute('aria-label').split(',')[0]);
      for (const e of qa('[data-tid^="participantsInCall-"] span[title]')) add(e.getAttribute('title'));
      const badgeEl = firstVis(['span[data-tid="toolbar-item-badge"]']);
      const badgeNum = badgeEl ? parseInt((badgeEl.innerText || '').replace(/[^0-9]/g, ''), 10) : NaN;
      // active speaker(s)
      const speakers = [];
      for (const o of qa('[data-tid="voice-level-stream-outline"].vdi-frame-occlusion')) {
        let t = o.closest('[data-stream-type][data-tid]');
        if (t && t.getAttribute('data-stream-type') === 'ScreenSharing') {
          const tileRoot = t.closest('[role="menuitem"]') || t.parentElement;
          t = (tileRoot && q('[data-stream-type="Video"][data-tid]', tileRoot)) || null;
        }
        let n = t ? t.getAttribute('data-tid') : null;
        if (!n) {
          const item = o.closest('[role="menuitem"]');
          const tag = item && q('[data-tid="participant-info-nametag"]', item);
          n = tag ? tag.innerText : null;
        }
        if (n && n.trim()) speakers.push(n.trim());
      }
      // chat (only in the DOM while the panel is open; virtualised: read what is there)
      const chat = [];
      let items = qa('[data-tid="chat-pane-item"]');
      if (!items.length) items = qa('[data-tid="chat-pane-message"]');
      let lastAuthor = null;
      for (const item of items) {
        const msg = item.matches('[data-tid="chat-pane-message"]') ? item : (q('[data-tid="chat-pane-message"]', item) || item);
        const bodyEl = q('[data-tid="messageBodyContent"], [id^="content-message-body-"], div[dir="auto"]', msg);
        if (!bodyEl) continue;
        const text = (bodyEl.innerText || '').trim();
        if (!text) continue;
        const a = q('[data-tid="message-author-name"]', msg);
        const mine = !!(msg.closest('.fui-ChatMyMessage') || q('.fui-ChatMyMessage', item) || msg.matches('.fui-ChatMyMessage'));
        let author = a ? (a.innerText || '').trim() : null;
        if (!author && !mine) author = lastAuthor; // grouped follow-ups carry no author
        if (author) lastAuthor = author;
        const t = q('time[datetime]', msg);
        const id = msg.getAttribute('data-mid') || (bodyEl.id || '') || item.id || '';
        chat.push({ key: id || `${author}|${t ? t.getAttribute('datetime') : ''}|${text}`, sender: author, text, mine });
      }
      const composer = firstVis(['[data-tid="ckeditor"] [contenteditable="true"]',
        'div[role="textbox"][contenteditable="true"][aria-label*="message" i]', '.ck-editor__editable[contenteditable="true"]']);
      const chatBtn = q('#chat-button') || q('[data-tid="chat-button"]');
      const endScreen = q('button[data-tid="anon-meeting-end-screen-rejoin-button"]');
      let endTitle = null;
      if (endScreen) {
        const root = endScreen.closest('[role="main"]') || endScreen.parentElement;
        endTitle = root ? (root.innerText || '').slice(0, 300) : null;
      }
      return {
        url: location.href,
        controls,
        retryTitle: retryTitle(),
        endScreen: !!endScreen,
        endTitle,
        e2ee: !!q('[data-tid="calling-e2ee-end-screen"]'),
        text: controls || !body ? '' : (body.innerText || '').slice(0, 3000),
        names,
        badge: Number.isFinite(badgeNum) ? badgeNum : null,
        speakers,
        chat,
        chatOpen: !!composer || !!q('[data-tid="chat-pane-list"]'),
        chatPressed: chatBtn ? chatBtn.getAttribute('aria-pressed') === 'true' : null,
        micOn: (() => { const m = q('#microphone-button'); return m ? /^mute\b/i.test(m.getAttribute('aria-label') || '') : null; })(),
      };
    },

    click(what) {
      const pick = {
        avModal: findAvContinue, cookie: findCookieAccept, continue: findContinue, join: findJoin,
      }[what];
      const e = pick && pick();
      if (!e || e.disabled) return false;
      e.click();
      return true;
    },

    // Mic and camera off (switches read before clicking), the speaker on; returns what it did.
    prejoinMedia() {
      const done = [];
      for (const tid of ['toggle-mute', 'toggle-video']) {
        const e = q(`[data-tid="${tid}"]`);
        if (!e) continue;
        const ac = e.getAttribute('aria-checked');
        const on = ac !== null ? ac === 'true' : (e.checked === true || e.getAttribute('aria-pressed') === 'true');
        if (on) { e.click(); done.push(tid); }
      }
      if (!done.length) {
        for (const b of buttons()) {
          const a = (b.getAttribute('aria-label') || '').trim();
          if (/^(mute mic|mute microphone|turn camera off|turn off video|turn off camera)$/i.test(a)) { b.click(); done.push(a); }
        }
      }
      for (const b of buttons()) {
        const a = (b.getAttribute('aria-label') || '').trim();
        if (/^turn speaker on$/i.test(a) || /^speaker is off$/i.test((b.innerText || '').trim())) { b.click(); done.push('speaker'); }
      }
      return done;
    },

    focus(kind) {
      const e = kind === 'passcode' ? findPasscode() : findName();
      if (!e) return false;
      e.focus();
      if (typeof e.select === 'function') e.select();
      return document.activeElement === e;
    },

    readName() {
      const e = findName();
      return e ? e.value : null;
    },

    // The CKEditor composer: focus, read, or paste (its model ignores execCommand('insertText')).
    editor([sels, action, text]) {
      const ed = firstVis(sels);
      if (!ed) return null;
      if (action === 'focus') { ed.focus(); return document.activeElement === ed || ed.contains(document.activeElement); }
      if (action === 'read') return (ed.innerText || '').replace(/\u00a0/g, ' ').trim();
      if (action === 'paste') {
        ed.focus();
        const dt = new DataTransfer();
        dt.setData('text/plain', text);
        ed.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
        return true;
      }
      return null;
    },

    openChat() {
      const b = firstVis(['#chat-button', '[data-tid="chat-button"]', 'button[data-tid="toggle-chat"]',
        'button[aria-label*="meeting chat" i]', 'button[aria-label*="show conversation" i]']) ||
        buttons().find((e) => /^chat$/i.test((e.getAttribute('aria-label') || '').trim()));
      if (!b) return 'missing';
      if (b.getAttribute('aria-pressed') === 'true') return 'pressed';
      b.click();
      return 'clicked';
    },

    send() {
      const b = firstVis(['button[data-tid="newMessageCommands-send"]', 'button[aria-label="Send"]']);
      if (!b || b.disabled) return false;
      b.click();
      return true;
    },

    hangup() {
      const b = firstVis(['#hangup-button', '[data-inp="hangup-button"]', 'button[data-tid="hangup-main-btn"]',
        'button[aria-label^="Leave"]']);
      if (!b) return false;
      b.click();
      return true;
    },

    confirmLeave() {
      for (const d of qa('[role="dialog"], [role="alertdialog"]').filter(vis)) {
        const b = qa('button', d).filter(vis).find((e) => /^leave$/i.test((e.innerText || '').trim()));
        if (b) { b.click(); return 'confirmed'; }
      }
      return firstVis(inMeetingSels) ? 'in-meeting' : 'gone';
    },

    micOff() {
      const m = q('#microphone-button');
      if (m && /^mute\b/i.test(m.getAttribute('aria-label') || '')) { m.click(); return true; }
      return false;
    },
  };
})()
