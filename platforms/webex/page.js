// The Webex driver's page scripts (platforms/webex/driver.py). `top` runs in the meeting page,
// `client` inside the web client's frame (#unified-webclient-iframe or thinIframe, a
// cross-origin frame: the driver evaluates it through Playwright's frame handle). Text is the
// visible text outside the chat list and the composer (people may type anything there).
// Selectors: shared/facts/web-clients-meet-webex.md (Webex).
(() => {
  const pageText = (skipSel) => {
    let text = '';
    if (!document.body) return text;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n && text.length < 6000; n = walker.nextNode()) {
      const el = n.parentElement;
      const t = n.data.trim();
      if (!t || !el || (skipSel && el.closest(skipSel))) continue;
      if (el.closest('script,style,noscript')) continue;
      if (el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden') {
        text += t + '\n';
      }
    }
    return text;
  };
  const label = (sel) => {
    const el = document.querySelector(sel);
    return el ? (el.getAttribute('aria-label') || el.textContent || '').trim() : null;
  };
  return {
    top() {
      const joinFromBrowser = Array.from(document.querySelectorAll('a, button, mdc-button, [role="button"]'))
        .some((el) => visible(el) && /^\s*join from (this|your) browser\s*$/i.test(el.textContent || ''));
      return {
        url: location.href,
        text: pageText(''),
        cookie: anyVisible('.cookie-banner-body mdc-button, #cookieMgmtbanner button,'
          + ' #cookieMgmtbanner mdc-button, #cookie-banner-text button'),
        joinFromBrowser,
        fallbackJoin: anyVisible('#fallBkJoinByBrowser'),
        clientFrame: !!document.querySelector('#unified-webclient-iframe, iframe[name="thinIframe"]'),
      };
    },
    client() {
      const chatSel = 'div[class^="style-chat-box"], div[class*=" style-chat-box"], .ql-editor,'
        + ' #quill-composer, textarea';
      // Chat: each message has an h3 label "from <sender> …" and a span text; a grouped
      // follow-up without a label keeps the previous sender.
      let chat = null;
      const box = document.querySelector('div[class^="style-chat-box"]');
      if (box) {
        chat = [];
        let last = '';
        for (const row of box.children) {
          const l = row.querySelector('h3[class^="style-chat-label"]');
          if (l) last = (l.textContent || '').trim();
          const m = row.querySelector('span[class^="style-chat-msg"]');
          if (m) chat.push([last, (m.textContent || '').trim()]);
        }
      }
      let speaker = null;
      const halo = Array.from(document.querySelectorAll('.active-speaker-halo')).find(visible);
      if (halo) {
        const holder = halo.closest('li,[role=listitem],.participants-video-tile');
        const n = holder && holder.querySelector('[data-test="participant-name"]');
        if (n) speaker = (n.textContent || '').trim();
      }
      // The enterprise client: the speaking tile and its name element (L-wx, AS).
      const speaking = Array.from(document.querySelectorAll('.videoitem-in-speaking-3a-w-')).find(visible);
      if (speaker === null && speaking) {
        const n = speaking.querySelector('.videoitem-full-name-content-TzQC4');
        if (n) speaker = (n.textContent || '').trim();
      }
      let roster = null;
      let count = null;
      const rosterToggle = document.querySelector('[data-test="participants-toggle-button"]');
      const rosterOpen = !!rosterToggle && rosterToggle.getAttribute('aria-expanded') === 'true';
      for (const t of document.querySelectorAll("mdc-text[tagname='h2']")) {
        const m = (t.textContent || '').match(/^\s*Participants\s*\((\d+)\)/);
        if (m) {
          count = parseInt(m[1], 10);
          const panel = t.parentElement;
          roster = Array.from(panel.querySelectorAll('li [data-test="participant-name"]'))
            .map((e) => (e.textContent || '').trim()).filter(Boolean);
        }
      }
      const joinBtn = document.querySelector('mdc-button[data-test="join-button"], #join-button,'
        + ' #interstitial_join_btn, button[title="Join meeting"]');
      const chatToggle = document.querySelector('[data-test="in-meeting-chat-toggle-button"]');
      // The enterprise client's video button: STOP_VIDEO while the camera is on (L-wx).
      const videoDoi = document.querySelector('button[data-doi*="STOP_VIDEO"]:not([disabled]),'
        + ' button[data-doi*="START_VIDEO"]');
      return {
        url: location.href,
        text: pageText(chatSel),
        password: anyVisible('input[aria-label="Meeting password"], input[type="password"]'),
        passwordError: anyVisible('[role="alert"]')
          && /incorrect password/i.test(pageText(chatSel)),
        captcha: anyVisible('img[alt="Captcha image"]'),
        nameInput: anyVisible('input[data-test="Name (required)"], input[autocomplete="name"],'
          + ' input[aria-labelledby="nameLabel"]'),
        emailInput: anyVisible('input[data-test="Email (required)"],'
          + ' input[aria-labelledby="emailLabel"]'),
        joinButton: visible(joinBtn),
        joinEnabled: visible(joinBtn) && !joinBtn.hasAttribute('disabled')
          && joinBtn.getAttribute('aria-disabled') !== 'true',
        lobby: anyVisible('[data-test="call_lobby_content"]'),
        inMeeting: anyVisible('[data-test="grid-layout"], [data-test="participants-toggle-button"],'
          + ' [data-test="in-meeting-chat-toggle-button"], [data-test="mc-share"],'
          + ' [data-test="raise-hand-button"],'
          + ' button[data-doi="CHAT:OPEN_CHAT_PANEL:MENU_CONTROL_BAR"]'),
        mic: label('mdc-button[data-test="microphone-button"]') ?? label('#audioControlButton'),
        camera: label('mdc-button[data-test="camera-button"]')
          ?? (videoDoi ? (/STOP_VIDEO/.test(videoDoi.getAttribute('data-doi')) ? 'Stop video' : 'Start video') : null),
        speaker,
        roster,
        rosterOpen,
        count,
        chat,
        chatOpen: (!!chatToggle && chatToggle.getAttribute('aria-expanded') === 'true'
          && anyVisible('.ql-editor[contenteditable="true"]'))
          || anyVisible('#chat-panel > div > textarea, textarea[placeholder="Type your message here"]'),
        dialogButtons: Array.from(document.querySelectorAll('[role="dialog"] mdc-button,'
          + ' [role="dialog"] button')).filter(visible).map((b) => (b.textContent || '').trim()),
      };
    },
  };
})()
