/*
 * Portal Insights beacon: reports what visitors do on a Power Pages portal.
 *
 * Readable source; `make beacon` minifies it (terser) into dci/static/beacon.js, which the app
 * serves at /api/beacon.js. Plain ES2017, no dependencies, no cookies.
 *
 * Configuration: data-* attributes of its own <script> tag, or window.PortalInsightsConfig for the
 * inline install (see docs/INSTALL-POWER-PAGES.md).
 */
((win, doc, loc) => {
  const script = doc.currentScript;
  const cfg = Object.assign({
    site: loc.host,
    searchPath: '/search',
    searchParam: 'q',
    results: '.search-results',
    result: 'a',
    casePath: '/support/create-case',
    ticket: '[data-ticket-number]'
  }, script && script.dataset, win.PortalInsightsConfig);
  // Locals from here on: the minifier shortens them, it cannot shorten property names.
  const endpoint = cfg.endpoint;
  const searchParam = cfg.searchParam;
  const results = cfg.results;
  const resultLinks = results + ' ' + cfg.result;
  const signedIn = cfg.signedIn + '' === 'true';
  const respectDnt = cfg.respectDnt + '' === 'true';
  let consent = cfg.consent !== 'required';

  const local = win.localStorage;
  const OUTBOX = 'pi_o';
  const MINUTE = 6e4;
  const now = Date.now;
  const uuid = () => crypto.randomUUID();
  const iso = () => new Date().toISOString();
  let started, sending, timer;

  const read = (key) => {
    try { return JSON.parse(local.getItem(key)); } catch (e) { return null; }
  };
  const write = (key, value) => {
    try { local.setItem(key, JSON.stringify(value)); } catch (e) { /* full or blocked */ }
  };
  const path = (p) => p.replace(/\/$/, '');

  // The visitor id lives as long as the browser keeps it; the session rotates after 30 idle minutes.
  const ids = () => {
    const s = read('pi_id') || { v: uuid() };
    if (!s.s || now() - s.t > 30 * MINUTE) s.s = uuid();
    s.t = now();
    write('pi_id', s);
    return s;
  };

  const allowed = () => endpoint && consent &&
    !(respectDnt && (navigator.doNotTrack === '1' || navigator.globalPrivacyControl)) &&
    !/^\/_(services|resources)\//.test(loc.pathname);

  const query = () => new URLSearchParams(loc.search).get(searchParam);
  const onSearch = () => path(loc.pathname) === path(cfg.searchPath);
  // The page URL without its query string, except the search parameter on the search page.
  const pageUrl = () => loc.origin + loc.pathname +
    (onSearch() && query() ? '?' + searchParam + '=' + encodeURIComponent(query()) : '');

  const track = (type, fields) => {
    if (!started) return;
    const e = Object.assign({ id: uuid(), type, ts: iso(), url: pageUrl() }, fields);
    // The server refuses events older than 7 days: they leave the outbox first.
    const out = (read(OUTBOX) || []).filter((x) => now() - x.t < 7 * 1440 * MINUTE);
    const who = ids();
    // One batch holds events of one visitor, session and sign-in state: `k` says which.
    out.push({ e, t: now(), k: who.v + ' ' + who.s + ' ' + signedIn });
    write(OUTBOX, out.slice(-200));
    clearTimeout(timer);
    timer = setTimeout(flush, 1000);
  };

  // The portal's own ID token when signed in, reused until a minute before it expires.
  const token = () => {
    const cached = read('pi_t');
    if (cached && cached.x - 60 > now() / 1000) return Promise.resolve(cached.t);
    return fetch('/_services/auth/token' + (cfg.clientId ? '?client_id=' + cfg.clientId : ''))
      .then((r) => r.text())
      .then((t) => {
        t = t.trim();
        write('pi_t', { t, x: JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp });
        return t;
      })
      .catch(() => undefined);
  };

  // Sends the oldest events (up to 50, all signed in or all anonymous, one visitor and session).
  // Events stay in the outbox until the endpoint accepts or refuses them, so nothing is lost
  // while it is unreachable; the server drops repeats by event id.
  const flush = () => {
    const out = read(OUTBOX) || [];
    if (sending || !out.length || !allowed()) return;
    const key = out[0].k;
    const [visitor, session, authed] = key.split(' ');
    const batch = out.filter((x) => x.k === key).slice(0, 50).map((x) => x.e);
    let more;
    sending = 1;
    // A string body goes as text/plain: no CORS preflight, as with sendBeacon.
    (authed === 'true' ? token() : Promise.resolve())
      .then((t) => fetch(endpoint, {
        method: 'POST',
        keepalive: true,
        body: JSON.stringify({ v: 1, site: cfg.site, visitor, session, token: t, sent_at: iso(), events: batch })
      }))
      .then((r) => {
        if (r.status < 500 && r.status !== 429) {
          const sent = batch.map((e) => e.id);
          write(OUTBOX, (read(OUTBOX) || []).filter((x) => sent.indexOf(x.e.id) < 0));
          more = 1;
        }
      })
      .catch(() => { /* unreachable: the events wait in the outbox */ })
      .then(() => { sending = 0; if (more) flush(); });
  };

  // Searches: the count is read when the results render (Power Pages renders them after load).
  const watchSearch = () => {
    const q = query();
    if (!onSearch() || !q) return;
    let done;
    const finish = (n) => {
      if (done) return;
      done = 1;
      observer.disconnect();
      track('search', { query: q.slice(0, 256), results: n });
    };
    const count = () => {
      const box = doc.querySelector(results);
      if (box && box.children.length) finish(box.querySelectorAll(cfg.result).length);
    };
    const observer = new MutationObserver(count);
    observer.observe(doc.documentElement, { childList: true, subtree: true });
    setTimeout(finish, 5000); // no results container after 5 s: send the search without a count
    count();
    addEventListener('click', (e) => {
      const link = e.target.closest(resultLinks);
      if (link) {
        track('search_click', { query: q.slice(0, 256),
          position: [...doc.querySelectorAll(resultLinks)].indexOf(link) + 1, target: link.href });
      }
    }, true);
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
    if (shownAt) engaged += now() - shownAt;
    shownAt = 0;
    if (engaged) track('engagement', { engaged_ms: Math.min(engaged, 864e5), scroll: depth });
    engaged = 0;
    flush();
  };

  const start = () => {
    if (started || !allowed()) return;
    started = 1;
    const ticket = doc.querySelector(cfg.ticket);
    // Knowledge-article numbers are read from the URL by the server (both Power Pages URL forms).
    track('page_view', {
      title: doc.title.slice(0, 512),
      referrer: /^https?:/.test(doc.referrer) ? doc.referrer.slice(0, 2048) : undefined
    });
    if (path(loc.pathname) === path(cfg.casePath)) track('case_form');
    if (ticket && ticket.textContent.trim()) track('case_submitted', { ticket: ticket.textContent.trim() });
    watchSearch();
    scrolled();
    addEventListener('scroll', scrolled, { passive: true });
    doc.addEventListener('visibilitychange', () => {
      if (doc.visibilityState === 'hidden') hidden(); else shownAt = now();
    });
    addEventListener('pagehide', hidden);
    flush();
  };

  win.PortalInsights = {
    consent: (yes) => { consent = !!yes; start(); },
    flush
  };
  start();
})(window, document, location);
