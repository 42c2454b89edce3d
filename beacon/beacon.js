/*
 * Portal Insights beacon: reports what visitors do on a Power Pages portal.
 *
 * Readable source; `make beacon` minifies it (terser) into dci/static/beacon.js, which the app
 * serves at /api/beacon.js. No dependencies, no cookies. Syntax up to ES2020 (`?.`, object spread,
 * async/await): every browser with `crypto.randomUUID` (Chrome/Edge 92, Firefox 95, Safari 15.4)
 * has all of it.
 *
 * Configuration: data-* attributes of its own <script> tag, or window.PortalInsightsConfig for the
 * inline install (see docs/INSTALL-POWER-PAGES.md).
 */
((win, doc, loc) => {
  const me = doc.currentScript;
  const cfg = {
    site: loc.host,
    searchPath: '/search',
    searchParam: 'q',
    casePath: '/support/create-case',
    ticket: '[data-ticket-number]',
    ...me?.dataset,
    ...win.PortalInsightsConfig
  };
  // Locals from here on: the minifier shortens them, it cannot shorten property names.
  const endpoint = cfg.endpoint;
  const searchParam = cfg.searchParam;
  const signedIn = cfg.signedIn + '' === 'true';
  let consent = cfg.consent !== 'required';

  const MINUTE = 6e4;
  const now = Date.now;
  const uuid = () => crypto.randomUUID();
  const iso = () => new Date().toISOString();
  let started, sending;

  // Everything the beacon keeps is one JSON object in localStorage['pi']: the visitor id `v`, the
  // session id `s` and its last use `t`, the outbox `o` and the cached token `k`. It is read right
  // before each change, so tabs of the same portal share it. When localStorage is missing or
  // refuses (storage blocked, quota full), nothing is kept.
  const load = () => {
    try { return JSON.parse(localStorage.pi); } catch { return {}; }
  };
  const save = (state) => {
    try { localStorage.pi = JSON.stringify(state); } catch { /* nothing kept */ }
  };
  const path = (p) => p.replace(/\/$/, '');

  const here = path(loc.pathname);
  // On the search page, what was searched for; the page URL keeps only that of its query string.
  const search = here === path(cfg.searchPath) && new URLSearchParams(loc.search).get(searchParam)?.slice(0, 256);
  const url = loc.origin + loc.pathname + (search ? '?' + searchParam + '=' + encodeURIComponent(search) : '');

  const allowed = () => endpoint && consent &&
    !(cfg.respectDnt + '' === 'true' && (navigator.doNotTrack == 1 || navigator.globalPrivacyControl)) &&
    !/^\/_(services|resources)\//.test(loc.pathname);

  const track = (type, fields) => {
    const state = load();
    // The visitor id lives as long as the browser keeps it; the session rotates after 30 idle minutes.
    state.v ||= uuid();
    if (!(now() - state.t < 30 * MINUTE)) state.s = uuid();
    state.t = now();
    // One batch holds events of one visitor, session and sign-in state: `k` says which. The server
    // refuses events older than 7 days: they leave the outbox first; it holds at most 200.
    state.o = [
      ...(state.o || []).filter((x) => now() - x.t < 7 * 1440 * MINUTE),
      { e: { id: uuid(), type, ts: iso(), url, ...fields }, t: now(), k: [state.v, state.s, signedIn] + '' }
    ].slice(-200);
    save(state);
    // Sent a second later, with whatever else happened meanwhile (a flush already running or an
    // empty outbox makes the extra timers no-ops).
    setTimeout(flush, 1000);
  };

  // The portal's own ID token when signed in, reused until a minute before it expires.
  const token = async () => {
    let t = load().k;
    if (t?.x - 60 > now() / 1000) return t.t;
    try {
      t = (await (await fetch('/_services/auth/token' + (cfg.clientId ? '?client_id=' + cfg.clientId : ''))).text()).trim();
      const state = load();
      state.k = { t, x: JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp };
      save(state);
      return t;
    } catch { /* not signed in after all, or the portal is down: the batch goes anonymous */ }
  };

  // Sends the oldest events (up to 50, all signed in or all anonymous, one visitor and session).
  // Events stay in the outbox until the endpoint accepts or refuses them, so nothing is lost
  // while it is unreachable; the server drops repeats by event id.
  const flush = async () => {
    const out = load().o || [];
    const key = out[0]?.k;
    const batch = out.filter((x) => x.k === key).slice(0, 50).map((x) => x.e);
    let done;
    if (sending || !key || !allowed()) return;
    sending = 1;
    const [visitor, session, authed] = key.split(',');
    try {
      // A string body goes as text/plain: no CORS preflight, as with sendBeacon.
      const r = await fetch(endpoint, {
        method: 'POST',
        keepalive: true,
        body: JSON.stringify({
          v: 1, site: cfg.site, visitor, session,
          // Always awaited: fetch then starts after the page's own script has run, not inside it
          // (called synchronously it added ~6 ms of script time to the page load; PERFORMANCE.md).
          token: await (authed === 'true' && token()) || undefined,
          sent_at: iso(),
          events: batch
        })
      });
      // Accepted or refused: either way these events are done. 429 and 5xx: try again later.
      if (r.status < 500 && r.status !== 429) {
        const state = load();
        done = batch.map((e) => e.id);
        state.o = state.o?.filter((x) => !done.includes(x.e.id));
        save(state);
      }
    } catch { /* unreachable: the events wait in the outbox */ }
    sending = 0;
    if (done) flush();
  };

  // Engaged time counts while the page is visible; sent with the deepest scroll when it is hidden.
  let shownAt = now();
  let engaged = 0;
  let depth = 0;
  const scrolled = () => {
    const h = doc.documentElement.scrollHeight - innerHeight;
    depth = Math.max(depth, h > 0 ? Math.min(100, Math.round(100 * scrollY / h)) : 100);
  };
  const hidden = () => {
    engaged += shownAt && now() - shownAt;
    shownAt = 0;
    if (engaged) track('engagement', { engaged_ms: Math.min(engaged, 864e5), scroll: depth });
    engaged = 0;
    flush();
  };

  const start = () => {
    if (started || !allowed()) return;
    started = 1;
    const ticket = doc.querySelector(cfg.ticket)?.textContent.trim();
    // Knowledge-article numbers are read from the URL by the server (both Power Pages URL forms).
    track('page_view', {
      title: doc.title.slice(0, 512),
      referrer: /^https?:/.test(doc.referrer) ? doc.referrer.slice(0, 2048) : undefined
    });
    if (here === path(cfg.casePath)) track('case_form');
    if (ticket) track('case_submitted', { ticket });
    // Searches are watched by a second small script, loaded only on the search page (search.js).
    // (The inline install has no script URL: there, the search page inlines that script too.)
    if (search && me?.src) doc.head.append(Object.assign(doc.createElement('script'), { src: me.src.replace('beacon.js', 'beacon-search.js') }));
    scrolled();
    addEventListener('scroll', scrolled, { passive: true });
    // (visibilitychange bubbles from the document to the window.)
    addEventListener('visibilitychange', () => {
      if (doc.hidden) hidden(); else shownAt = now();
    });
    addEventListener('pagehide', hidden);
    flush();
  };

  win.PortalInsights = {
    consent: (yes) => { consent = !!yes; start(); },
    flush,
    // For beacon-search.js:
    track: (type, fields) => started && track(type, fields),
    config: cfg,
    search
  };
  start();
})(window, document, location);
