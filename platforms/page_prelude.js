// Helpers every driver's page.js may use. platforms.toolkit.PageScript joins this prelude and
// a page.js into one expression, (() => { <prelude> return (<page.js>); })(), so these are in
// scope inside each page.js (a page.js may still declare its own of the same name).

// Has layout boxes and is not hidden (a display:contents wrapper counts through its boxes).
const vis = (e) => {
  if (!e) return false;
  const r = e.getClientRects();
  if (!r.length) return false;
  const s = getComputedStyle(e);
  return s.visibility !== 'hidden' && s.display !== 'none';
};
// In the document, with a non-empty box, and not hidden.
const visible = (el) => {
  if (!el || !el.isConnected) return false;
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) return false;
  const cs = getComputedStyle(el);
  return cs.visibility !== 'hidden' && cs.display !== 'none';
};
const q = (sel, root) => (root || document).querySelector(sel);
const qa = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const anyVisible = (sel) => Array.from(document.querySelectorAll(sel)).some(visible);
