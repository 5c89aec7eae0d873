// The navigation guard's popup blocker (vp/navguard.py): runs in every frame before the
// page's scripts. No window.open, no link or form that opens another window
// (target=_blank or a named window, also through <base target>).
(() => {
  const own = new Set(['', '_self', '_top', '_parent']);
  const opensWindow = (target) => !own.has(String(target || '').toLowerCase());
  try {
    Object.defineProperty(window, 'open', {
      value: function open() { return null; }, writable: false, configurable: false,
    });
  } catch (e) {}
  const baseTarget = () => {
    const base = document.querySelector('base[target]');
    return base ? base.getAttribute('target') : '';
  };
  const onClick = (event) => {
    const start = event.target;
    const link = start && start.closest ? start.closest('a[href], area[href]') : null;
    if (link && (opensWindow(link.getAttribute('target') || baseTarget()) ||
                 event.type === 'auxclick' || event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault();
    }
  };
  window.addEventListener('click', onClick, true);
  window.addEventListener('auxclick', onClick, true);
  window.addEventListener('submit', (event) => {
    const form = event.target;
    const submitter = event.submitter;
    const target = (submitter && submitter.getAttribute('formtarget')) ||
      (form && form.getAttribute && form.getAttribute('target')) || baseTarget();
    if (opensWindow(target)) event.preventDefault();
  }, true);
})();
