// The Chime driver's page script (platforms/chime/driver.py): one snapshot serves join()
// and watch(). Text is the visible page text outside the chat list, the roster and the chat
// box (people may type anything there), and — while the meeting controls are up — outside
// transient alerts/toasts. Selectors: shared/facts/web-clients.md §3.
(() => ({
  snapshot() {
    const controlBar = anyVisible('nav[data-testid="control-bar"]');
    const chatToggle = anyVisible('button[aria-label^="Open chat panel"],'
      + 'button[aria-label^="Close chat panel"]');
    const chatList = q('._2B9DdDvc2PdUbvEGXfOU20');
    const skip = ['._2B9DdDvc2PdUbvEGXfOU20', 'textarea', '._1IEUbelvxVpEblfF0Mula8',
      'script', 'style', 'noscript'];
    if (controlBar) skip.push('[role="alert"]', '[role="status"]', '.Toasts');
    const skipSel = skip.join(',');
    let text = '';
    if (document.body) {
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      const seen = new Map();
      for (let n = walker.nextNode(); n && text.length < 6000; n = walker.nextNode()) {
        const el = n.parentElement;
        const t = n.data.trim();
        if (!t || !el || el.closest(skipSel)) continue;
        let ok = seen.get(el);
        if (ok === undefined) {
          ok = el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
          seen.set(el, ok);
        }
        if (ok) text += t + '\n';
      }
    }
    // Roster: names in the "Present" section (the VP is listed too).
    let present = null;
    for (const sec of document.querySelectorAll('._1IEUbelvxVpEblfF0Mula8')) {
      const head = sec.querySelector('button[data-testid="collapse-container"]');
      if (!head || !/^present/i.test(head.getAttribute('aria-label') || '')) continue;
      present = Array.from(sec.querySelectorAll('.ppi5x8cvVEQgbl_hLeiRW'))
        .map((e) => e.textContent.trim()).filter(Boolean);
    }
    let presentCount = null;
    const countBtn = q('button[data-testid="collapse-container"][aria-label^="Present"]');
    if (countBtn) {
      const m = (countBtn.textContent || '').match(/\d+/)
        || (countBtn.getAttribute('aria-label') || '').match(/\d+/);
      if (m) presentCount = parseInt(m[0], 10);
    }
    // Chat: senders are left out on grouped follow-ups; they inherit the previous one.
    let chat = null;
    if (chatList) {
      chat = [];
      let last = '';
      const items = chatList.querySelectorAll('.chatBubbleContainer');
      const rows = items.length ? items : chatList.children;
      for (const row of rows) {
        const s = row.querySelector('h3[data-testid="chat-bubble-sender-name"]');
        if (s) last = s.textContent.trim();
        const body = row.querySelector('.Linkify') || row.querySelector('.markdown p');
        if (body) chat.push([last, body.textContent.trim()]);
      }
    }
    const speakerEl = q('.activeSpeakerCell ._3yg3rB2Xb_sfSzRXkm8QT-');
    const nameEl = q('#name, input[id="name"], input[name="name"]');
    const dialogButtons = [];
    for (const d of document.querySelectorAll('[role="dialog"], [role="alertdialog"]')) {
      if (!visible(d)) continue;
      for (const b of d.querySelectorAll('button')) {
        if (visible(b)) dialogButtons.push((b.textContent || '').trim());
      }
    }
    // A captcha challenge (AWS WAF's page, a reCAPTCHA challenge frame) — not a mere badge.
    const captchaEl = anyVisible('#captcha-container, .amzn-captcha-modal,'
      + ' iframe[src*="captcha" i][title*="challenge" i]');
    return {
      url: location.href,
      text,
      cookie: anyVisible('button[data-id="awsccc-cb-btn-accept"]'),
      name: visible(nameEl),
      deviceJoin: anyVisible('button[data-test-id="DevicePreviewJoinBtn"],'
        + 'button[data-testid="button"][aria-label="Join"]'),
      passcodeInput: anyVisible('input[type="password"], input[aria-label*="passcode" i]'),
      inMeeting: controlBar || chatToggle,
      controlBar,
      captcha: captchaEl,
      dialogButtons,
      speaker: speakerEl ? speakerEl.textContent.trim() : null,
      present,
      presentCount,
      chat,
      chatOpen: !!chatList && anyVisible('textarea[placeholder="Message all attendees"],'
        + 'textarea[data-testid="textarea"]'),
      chatToggle: anyVisible('button[aria-label^="Open chat panel"]'),
      rosterToggle: anyVisible('button[aria-label^="Open attendees panel"]'),
      mic: (q('button#audio') || {getAttribute: () => null}).getAttribute('aria-label'),
      video: (q('button#video') || {getAttribute: () => null}).getAttribute('aria-label'),
    };
  },
}))()
