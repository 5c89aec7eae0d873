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
  // The demo's #toggleaudio ("Mute" while unmuted, "Unmute" while muted), clicked in the page
  // when the microphone is not as wanted: one round trip, no wait for the button to stop
  // moving while the demo lays out the room panel. 'hidden' until the room's audio is set up.
  microphone(on) {
    const toggle = document.querySelector('#toggleaudio');
    if (!toggle || toggle.getClientRects().length === 0) return 'hidden';
    if (toggle.textContent.trim() !== (on ? 'Unmute' : 'Mute')) return 'as-wanted';
    toggle.click();
    return 'clicked';
  },
}))()
