// The Janus driver's page script (platforms/janus/driver.py): one snapshot of the AudioBridge
// demo page serves join() and watch().
(() => ({
  snapshot() {
    const dialog = document.querySelector('.bootbox .bootbox-body');
    // Each <li> holds the display name as a text node beside icons (and maybe a slider).
    const names = Array.from(document.querySelectorAll('#list > li'))
      .map((li) => Array.from(li.childNodes)
        .filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent).join('').trim())
      .filter(Boolean);
    const shown = (sel) => {
      const el = document.querySelector(sel);
      return !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    };
    const start = document.querySelector('#start');
    const username = document.querySelector('#username');
    const room = document.querySelector('#room');
    return {
      dialog: dialog ? dialog.textContent.trim() : null,
      names,
      inRoom: !!room && getComputedStyle(room).display !== 'none',
      roomShown: shown('#room'),
      start: start && shown('#start') && !start.disabled ? start.textContent.trim() : null,
      username: !!username && shown('#username') && !username.disabled,
    };
  },
}))()
