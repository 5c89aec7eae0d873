/*
 * The Webex meeting page (replica): /meet/<name> (a personal room) or /<site>/j.php?MTID=<token>.
 * Per the facts (shared/facts/web-clients-meet-webex.md, Webex): a cookie banner
 * (.cookie-banner-body with mdc-button Reject / Accept), a layout container
 * #broadcom-center-right that no longer is the button (clicking it does nothing), the
 * "Join from this browser" control found by its text, and then the web client in
 * #unified-webclient-iframe (enterprise sites, scenario thin_iframe: iframe[name=thinIframe]),
 * loaded from the client's own origin (cross-origin to this page).
 * An unknown meeting shows "Meeting not found" / "Invalid meeting" on this page. With the
 * scenario's client_in_page, the client runs in the main frame instead (newer j.php builds:
 * preloader.html?…runInOwnPage=true).
 * Passwords are not handled here: the client frame asks for the meeting password.
 */
(function () {
  'use strict';
  const app = document.getElementById('app');
  const path = location.pathname.replace(/\/+$/, '');
  const params = new URLSearchParams(location.search);
  const personal = path.match(/^\/meet\/([A-Za-z0-9_-]{1,64})$/);
  const site = (path.match(/^\/([a-z0-9-]+)\/j\.php$/) || [])[1] || 'replica';
  const meetingId = personal ? personal[1] : params.get('MTID');

  const h = window.ReplicaKit.makeH();

  function cookieBanner() {
    const close = () => banner.remove();
    if (thin) {
      // Enterprise sites: #cookie-banner-text … button:nth-child(1) rejects (L-wx).
      const banner = h('div', { id: 'cookie-banner-text', class: 'cookie-banner-enterprise' },
        h('p', { text: 'We use cookies to make our website work and to improve your experience.' }),
        h('div', null,
          h('button', { type: 'button', onclick: () => banner.remove() }, 'Reject'),
          h('button', { type: 'button', onclick: () => banner.remove() }, 'Accept')));
      document.body.appendChild(banner);
      return;
    }
    const banner = h('div', { id: 'cookieMgmtbanner', class: 'cookie-banner-body' },
      h('p', { id: 'cookie-banner-text', text: 'We use cookies to make our website work and to improve your experience.' }),
      h('div', { class: 'a32ueaoVYHwRrsRMl0ci' },
        h('mdc-button', { onclick: close }, 'Reject'),
        h('mdc-button', { variant: 'primary', onclick: close }, 'Accept')));
    document.body.appendChild(banner);
  }

  function notFound() {
    app.replaceChildren(h('div', { class: 'error-page' },
      h('h1', { class: 'meet_message_H1', text: 'Meeting not found' }),
      h('p', { text: 'Invalid meeting number or link. Check the meeting information and try again.' })));
  }

  let clientOrigin = null;
  let opened = false;
  let inPage = false;
  let thin = false;
  // The page tries the desktop app first: a webex:// launch (in a real browser a native
  // "Open Webex?" chooser; LMA, L-prof). Each "Join from this browser" click fires it again.
  function launchApp() {
    try {
      location.href = 'webex://meeting?siteurl=' + encodeURIComponent(site) + '&MTID=' + encodeURIComponent(meetingId || '');
    } catch (e) {}
  }

  function joinFromBrowser() {
    launchApp();
    if (opened || !clientOrigin) return;
    opened = true;
    if (inPage) {
      // Newer j.php builds: the client takes over the main frame (L-wx, 2026-06-08/09).
      const p = new URLSearchParams({ mid: meetingId, siteurl: site, runInOwnPage: 'true' });
      location.assign(clientOrigin + '/webappng/sites/' + site + '/meeting/preloader.html?' + p.toString());
      return;
    }
    const q = new URLSearchParams({ mid: meetingId, siteurl: site, preload: 'false' });
    // Classic sites frame the client as #unified-webclient-iframe; enterprise ones as
    // iframe[name="thinIframe"] (L-wx, AS).
    const frameName = thin ? 'thinIframe' : 'unified-webclient-iframe';
    const frame = h('iframe', {
      id: frameName,
      name: frameName,
      title: 'Webex meeting',
      allow: 'camera; microphone; autoplay; display-capture',
      src: clientOrigin + '/webappng/sites/' + site + '/meeting/client?' + q.toString(),
    });
    app.replaceChildren(frame);
  }

  function landing() {
    app.replaceChildren(h('div', { class: 'layout' },
      h('div', { id: 'broadcom-center-left' }, h('h1', { class: 'meet_message_H1', text: 'Join your Webex meeting' })),
      h('div', { id: 'broadcom-center-right' },
        h('p', { text: 'Starting Webex… If nothing prompts from your browser, download and run Webex.' }),
        h('mdc-button', { variant: 'secondary' }, 'Download Webex'),
        h('p', null, 'Having trouble with the app? ',
          h('a', { href: '#', role: 'button', onclick: (ev) => { ev.preventDefault(); joinFromBrowser(); } }, 'Join from this browser')))));
  }

  async function boot() {
    let scenario = null;
    if (meetingId && /^[A-Za-z0-9_-]{1,64}$/.test(meetingId)) {
      try {
        const r = await fetch('/__replica/m/' + encodeURIComponent(meetingId) + '/scenario', { cache: 'no-store' });
        if (r.ok) scenario = await r.json();
        const o = await fetch('/__replica/client-origin', { cache: 'no-store' });
        if (o.ok) clientOrigin = (await o.json()).origin;
      } catch (e) {}
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    inPage = !!(scenario && scenario.client_in_page);
    thin = !!(scenario && scenario.thin_iframe);
    cookieBanner();
    if (!scenario || scenario.not_found) notFound();
    else {
      landing();
      launchApp();
    }
  }
  boot();
})();
