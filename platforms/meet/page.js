// The Google Meet driver's page scripts (platforms/meet/driver.py calls each function on its own).
// Selectors and texts: shared/facts/web-clients-meet-webex.md (Google Meet).
(() => {
  const txt = (e) => ((e && (e.innerText || e.textContent)) || '').trim();
  const aria = (e) => (e.getAttribute('aria-label') || '').trim();
  // The join button texts (A-ui, V-sel), matched as //button[.//span[text()=…]].
  const JOIN_TEXTS = ['Ask to join', 'Ask to join anyway', 'Join now', 'Join the call now', 'Join anyway',
    'Join here too', 'Switch here'];
  const PREJOIN_DIALOG_TEXTS = ['Continue without microphone and camera', 'Use without an account', 'Got it'];
  const EFFECTS = /^(visual_effects|backgrounds and effects)$/i;
  const SPEAKING = ['Oaajhc', 'HX2H7', 'wEsLMd', 'OgVli'];
  const dialogs = () => qa('[role="dialog"], [role="alertdialog"]').filter(vis);
  const inDialog = (e) => !!e.closest('[role="dialog"], [role="alertdialog"]');
  const spanText = (b) => qa('span', b).map(txt).concat([txt(b)]);
  const findJoin = () => {
    for (const t of JOIN_TEXTS) {
      const b = qa('button').find((x) => vis(x) && !inDialog(x) && !x.getAttribute('aria-label') &&
        spanText(x).includes(t));
      if (b) return b;
    }
    return null;
  };
  const findName = () => {
    for (const sel of ['input[type="text"][aria-label="Your name"]', 'input[placeholder="Your name"]',
      'input[jsname][type="text"]', 'div[jscontroller] input[type="text"]']) {
      const e = qa(sel).find(vis);
      if (e) return e;
    }
    return null;
  };
  const toggle = (what) => {
    // Lobby: "Turn off microphone" while on, "Turn on microphone" while off (div or button).
    for (const e of qa(`button[aria-label$="${what}"], div[role="button"][aria-label$="${what}"], div[aria-label$="${what}"]`)) {
      const a = aria(e);
      if (a === `Turn off ${what}`) return { on: true, el: e };
      if (a === `Turn on ${what}`) return { on: false, el: e };
    }
    return null;
  };
  // A dialog and the button that answers it: the recording / Gemini notice is answered with its
  // own "Join now" (or data-mdc-dialog-action="ok"); dismissing it otherwise gets guests ejected.
  const dialogAnswers = () => {
    const out = [];
    for (const d of dialogs().reverse()) { // the last one opened is on top
      const buttons = qa('button', d).filter(vis);
      const body = txt(d);
      if (/being recorded|being transcribed|gemini is taking notes|taking notes/i.test(body)) {
        const join = buttons.find((b) => /^join now$/i.test(txt(b))) ||
          buttons.find((b) => b.getAttribute('data-mdc-dialog-action') === 'ok');
        if (join) { out.push({ kind: 'notice', label: txt(join), el: join }); continue; }
      }
      for (const t of PREJOIN_DIALOG_TEXTS) {
        const b = buttons.find((x) => txt(x) === t);
        if (b) { out.push({ kind: 'dialog', label: t, el: b }); break; }
      }
    }
    return out;
  };
  const dialogAnswer = () => dialogAnswers()[0] || null;
  // The element's centre when a click there reaches it (nothing covers it), else null.
  const clickPoint = (e) => {
    if (!e || !vis(e) || e.disabled) return null;
    e.scrollIntoView({ block: 'center', inline: 'center' });
    const r = e.getBoundingClientRect();
    const x = r.left + r.width / 2;
    const y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    return hit && (hit === e || e.contains(hit)) ? { x, y } : null;
  };
  const tiles = () => qa('[data-participant-id]').filter((t) => {
    const label = aria(t) || txt(q('span.notranslate', t));
    return !EFFECTS.test(label) && !EFFECTS.test(t.getAttribute('data-participant-id') || '');
  });
  const tileName = (t) => txt(q('span.notranslate', t)) || aria(t);
  const captcha = () => qa('iframe[src*="recaptcha" i], iframe[title*="recaptcha" i]').some((f) => {
    if (!vis(f)) return false;
    const r = f.getBoundingClientRect();
    return r.width >= 120 && r.height >= 40; // an invisible reCAPTCHA frame is on every join
  });
  const signInWall = () => qa('h1').some((h) => /sign in/i.test(txt(h)) &&
    h.parentElement && /your google account/i.test(txt(h.parentElement)));
  const leaveCall = () => qa('button[aria-label="Leave call"]').some(vis);
  const chatMessages = () => {
    const out = [];
    for (const group of qa('.aops0b')) {
      const sender = txt(q('.HNucUd .poVWob', group)) || txt(q('.poVWob', group));
      for (const m of qa('.RLrADb[data-message-id]', group)) {
        const body = q('.jO4O1', m);
        if (!body) continue;
        const copy = body.cloneNode(true);
        for (const x of qa('.Sd72u, .UaaITe', copy)) x.remove();
        const text = (copy.textContent || '').trim();
        if (text) out.push({ key: m.getAttribute('data-message-id'), sender, text });
      }
    }
    return out;
  };

  return {
    // Everything the driver needs, in one round trip (before and after admission).
    snapshot() {
      const body = document.body;
      const name = findName();
      const join = findJoin();
      const mic = toggle('microphone');
      const cam = toggle('camera');
      const dialog = dialogAnswer();
      const all = tiles();
      const selfEl = q('[data-self-name]');
      const self = selfEl ? selfEl.getAttribute('data-self-name') : null;
      const names = [];
      let speaker = null;
      for (const t of all) {
        const n = tileName(t);
        if (!n) continue;
        const mine = !!q('[data-self-name]', t) || t.hasAttribute('data-self-name');
        if (!mine && !names.includes(n)) names.push(n);
        if (!mine && !speaker && SPEAKING.some((c) => q('.' + c, t))) speaker = n;
      }
      const roster = [];
      for (const li of qa('div[aria-label="Participants"][role="list"] div[role="listitem"]')) {
        const n = aria(li);
        if (n) roster.push(n);
      }
      // span[data-avatar-count] replaced aria-label="People - N joined" (screenapp#40).
      const countEl = q('span[data-avatar-count]');
      let count = countEl ? parseInt(countEl.getAttribute('data-avatar-count'), 10) : NaN;
      if (!Number.isFinite(count)) {
        const older = q('[aria-label^="People - "][aria-label$=" joined"]');
        const m = older ? /People - (\d+) joined/.exec(older.getAttribute('aria-label')) : null;
        if (m) count = parseInt(m[1], 10);
      }
      const chatBtn = q('button[aria-label="Chat with everyone"]');
      const input = qa('textarea[aria-label="Send a message"], textarea[aria-label="Send a message to everyone"], textarea[placeholder="Send a message"]').find(vis);
      return {
        url: location.href,
        host: location.hostname,
        text: body ? (body.innerText || '').slice(0, 6000) : '',
        name: name ? { value: name.value } : null,
        join: join ? txt(join) : null,
        joinDisabled: join ? !!join.disabled || join.getAttribute('aria-disabled') === 'true' : false,
        mic: mic ? mic.on : null,
        camera: cam ? cam.on : null,
        dialog: dialog ? { kind: dialog.kind, label: dialog.label } : null,
        tiles: all.length,
        selfName: self,
        captions: qa('button[aria-label="Turn on captions"], button[aria-label="Turn off captions"]').some(vis),
        leaveCall: leaveCall(),
        captcha: captcha(),
        signIn: signInWall(),
        names,
        roster,
        count: Number.isFinite(count) ? count : null,
        speaker,
        chat: chatMessages(),
        chatButton: chatBtn ? { pressed: chatBtn.getAttribute('aria-pressed') === 'true' } : null,
        chatInput: !!input,
        audioElements: qa('body > audio').length,
      };
    },

    // Where to click ``what`` with the real mouse: Meet ignores synthetic (isTrusted=false)
    // clicks (V-join). ``what``: join, dialog, microphone, camera (only while on), chat, leave.
    // Null when there is nothing to click or something else covers it.
    point(what) {
      if (what === 'dialog') {
        for (const d of dialogAnswers()) {
          const p = clickPoint(d.el);
          if (p) return { x: p.x, y: p.y, label: d.label };
        }
        return null;
      }
      let e = null;
      if (what === 'join') e = findJoin();
      else if (what === 'microphone' || what === 'camera') { const t = toggle(what); e = t && t.on ? t.el : null; }
      else if (what === 'chat') e = q('button[aria-label="Chat with everyone"]');
      else if (what === 'leave') e = qa('button[aria-label="Leave call"]').find(vis) || null;
      const p = clickPoint(e);
      return p && { x: p.x, y: p.y, label: aria(e) || txt(e) };
    },

    focusName() {
      const e = findName();
      if (!e) return false;
      e.focus();
      if (typeof e.select === 'function') e.select();
      return document.activeElement === e;
    },

    chatOpen() {
      return qa('textarea[aria-label="Send a message"], textarea[aria-label="Send a message to everyone"]').some(vis);
    },

    // Set the composer's value, fire input, then Enter (A-js).
    sendChat(text) {
      const ta = qa('textarea[aria-label="Send a message"], textarea[aria-label="Send a message to everyone"], textarea[placeholder="Send a message"]').find(vis);
      if (!ta) return false;
      ta.focus();
      const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
      setter.call(ta, text);
      ta.dispatchEvent(new Event('input', { bubbles: true }));
      const init = { key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true };
      ta.dispatchEvent(new KeyboardEvent('keydown', init));
      ta.dispatchEvent(new KeyboardEvent('keyup', init));
      return true;
    },

    focusChat() {
      const ta = qa('textarea[aria-label="Send a message"], textarea[aria-label="Send a message to everyone"], textarea[placeholder="Send a message"]').find(vis);
      if (!ta) return false;
      ta.focus();
      return document.activeElement === ta;
    },
  };
})()
