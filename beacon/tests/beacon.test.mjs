// Unit tests of the beacon's URL handling, batching, outbox, identity and privacy logic, on the
// built script (`node --test beacon/tests/`; `make test` runs them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, START, SEARCH, idToken } from './harness.mjs';

const PORTAL = 'https://contoso.powerappsportals.com';
const MINUTE = 60000;
const ENDPOINT = 'https://func.example.net/api/collect';

test('a page view is sent at once, as text, with the page URL stripped of its query', async () => {
  const browser = new Browser();
  const page = browser.open(`${PORTAL}/knowledgebase/article/KA-01023/en-us?utm_source=mail&q=x#top`,
    { title: 'Reset your password', referrer: 'https://www.bing.com/search?q=reset' });
  await page.advance(0);
  const [request] = browser.requests;
  assert.equal(request.options.method, 'POST');
  assert.equal(request.options.keepalive, true);
  assert.equal(typeof request.options.body, 'string'); // text/plain: no CORS preflight
  const batch = JSON.parse(request.options.body);
  assert.deepEqual(Object.keys(batch), ['v', 'site', 'visitor', 'session', 'sent_at', 'events']);
  assert.equal(batch.site, 'contoso.powerappsportals.com');
  assert.equal(batch.sent_at, new Date(START).toISOString());
  const [view] = batch.events;
  assert.equal(view.type, 'page_view');
  assert.equal(view.url, `${PORTAL}/knowledgebase/article/KA-01023/en-us`);
  assert.equal(view.title, 'Reset your password');
  assert.equal(view.referrer, 'https://www.bing.com/search?q=reset');
  assert.equal(view.ts, new Date(START).toISOString());
  assert.match(view.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(browser.outbox(), []); // accepted: the outbox is empty again
});

test('the search page keeps only the search parameter in its URL, encoded', async () => {
  const browser = new Browser();
  browser.open(`${PORTAL}/search/?q=reset%20password&page=2&utm_source=x`);
  browser.open(`${PORTAL}/en-US/support/?q=vpn`, { dataset: { endpoint: ENDPOINT, searchPath: '/en-US/support' } });
  browser.open(`${PORTAL}/knowledgebase/?q=vpn`);
  const urls = browser.outbox().map((x) => x.e.url);
  assert.deepEqual(urls, [`${PORTAL}/search/?q=reset%20password`, `${PORTAL}/en-US/support/?q=vpn`,
    `${PORTAL}/knowledgebase/`]);
});

test('a referrer that is not http(s) and an over-long title are not sent as such', async () => {
  const browser = new Browser();
  browser.open(`${PORTAL}/`, { referrer: 'android-app://com.example', title: 'x'.repeat(600) });
  const [{ e }] = browser.outbox();
  assert.equal(e.referrer, undefined);
  assert.equal(e.title.length, 512);
});

test('later events wait a second and go together; 120 of them go out as 50, 50 and 20', async () => {
  const browser = new Browser();
  const page = browser.open(`${PORTAL}/`);
  await page.advance(0);
  assert.deepEqual(browser.batches().map((b) => b.events.map((e) => e.type)), [['page_view']]);
  for (let i = 0; i < 120; i++) page.run("PortalInsights.track('case_form')");
  await page.advance(999);
  assert.equal(browser.batches().length, 1);
  await page.advance(1);
  assert.deepEqual(browser.batches().map((b) => b.events.length), [1, 50, 50, 20]);
  const ids = browser.batches().flatMap((b) => b.events.map((e) => e.id));
  assert.equal(new Set(ids).size, 121);
});

test('a batch never mixes sessions or sign-in states, and only signed-in batches carry the token', async () => {
  const token = idToken(START / 1000 + 3600);
  let up = false;
  const browser = new Browser({
    respond: (r) => r.url.includes('/_services/auth/token') ? { status: 200, body: token + '\n' }
      : { status: up ? 202 : 503 }
  });
  const anonymous = browser.open(`${PORTAL}/`);
  await anonymous.advance(0);
  await browser.open(`${PORTAL}/profile`, { dataset: { endpoint: ENDPOINT, signedIn: 'true' } }).advance(0);
  browser.clock.t += 31 * MINUTE; // idle: a new session
  const later = browser.open(`${PORTAL}/later`);
  await later.advance(0);
  assert.equal(browser.outbox().length, 3);
  up = true;
  browser.requests = [];
  later.run('PortalInsights.flush()');
  await later.advance(0);
  const batches = browser.batches();
  const urls = batches.map((b) => b.events.map((e) => e.url.replace(PORTAL, '')));
  assert.deepEqual(urls, [['/'], ['/profile'], ['/later']]);
  assert.deepEqual(batches.map((b) => b.token), [undefined, token, undefined]); // trimmed, as sent
  assert.equal(new Set(batches.map((b) => b.visitor)).size, 1);
  assert.equal(batches[0].session, batches[1].session);
  assert.notEqual(batches[1].session, batches[2].session);
  assert.deepEqual(browser.outbox(), []);
});

test('the session survives 29 idle minutes and rotates after 30; the visitor stays', async () => {
  const browser = new Browser();
  const ids = () => JSON.parse(browser.storage.pi);
  browser.open(`${PORTAL}/a`);
  const first = ids();
  browser.clock.t += 29 * MINUTE;
  browser.open(`${PORTAL}/b`);
  assert.equal(ids().s, first.s);
  browser.clock.t += 30 * MINUTE;
  browser.open(`${PORTAL}/c`);
  assert.notEqual(ids().s, first.s);
  assert.equal(ids().v, first.v);
});

for (const [what, answer, kept] of [
  ['503', { status: 503 }, true],
  ['429', { status: 429 }, true],
  ['a network error', new TypeError('Failed to fetch'), true],
  ['400 (refused: re-sending cannot help)', { status: 400 }, false],
  ['202', { status: 202 }, false]
]) {
  test(`after ${what} the events are ${kept ? 'kept, then re-sent with the same ids' : 'done'}`, async () => {
    let next = answer;
    const browser = new Browser({ respond: () => next });
    const page = browser.open(`${PORTAL}/`);
    await page.advance(1000);
    assert.equal(browser.outbox().length, kept ? 1 : 0);
    next = { status: 202 };
    const again = browser.open(`${PORTAL}/next`);
    await again.advance(1000);
    const sent = browser.batches().map((b) => b.events.map((e) => e.id));
    if (kept) assert.deepEqual(sent[1], [sent[0][0], browser.batches()[1].events[1].id]);
    else assert.deepEqual(sent[1].length, 1);
    assert.deepEqual(browser.outbox(), []);
  });
}

test('the outbox keeps the newest 200 events and drops those older than 7 days', async () => {
  const browser = new Browser({ respond: () => ({ status: 503 }) });
  const page = browser.open(`${PORTAL}/old`);
  browser.clock.t += 6 * 1440 * MINUTE;
  for (let i = 0; i < 150; i++) page.run("PortalInsights.track('case_form')");
  assert.equal(browser.outbox().length, 151);
  browser.clock.t += 1440 * MINUTE; // the first page view is now 7 days old
  page.run("PortalInsights.track('case_form')");
  assert.equal(browser.outbox().length, 151);
  assert.ok(browser.outbox().every((x) => x.e.type === 'case_form'));
  for (let i = 0; i < 100; i++) page.run("PortalInsights.track('search_click')");
  const out = browser.outbox();
  assert.equal(out.length, 200);
  assert.equal(out.filter((x) => x.e.type === 'case_form').length, 100); // the oldest 51 went
});

test('the token is fetched once and reused until a minute before it expires', async () => {
  const exp = START / 1000 + 600;
  let issued = 0;
  assert.match(idToken(exp, { n: '~~~???>>>' }).split('.')[1], /[-_]/);
  const browser = new Browser({
    respond: (r) => {
      if (!r.url.includes('/_services/auth/token')) return { status: 202 };
      issued++;
      return { status: 200, body: idToken(exp + (issued - 1) * 600, { n: '~~~???>>>' }) }; // '-' and '_' in base64url
    }
  });
  const options = { dataset: { endpoint: ENDPOINT, signedIn: 'true', clientId: 'portal-insights' } };
  for (const minutes of [0, 3, 8]) {
    browser.clock.t = START + minutes * MINUTE;
    await browser.open(`${PORTAL}/p${minutes}`, options).advance(1000);
  }
  assert.equal(issued, 1);
  browser.clock.t = START + 9 * MINUTE + 1000; // within a minute of exp
  await browser.open(`${PORTAL}/p9`, options).advance(1000);
  assert.equal(issued, 2);
  const tokenRequests = browser.requests.filter((r) => r.url.includes('/_services/auth/token'));
  assert.deepEqual(tokenRequests.map((r) => r.url), Array(2).fill('/_services/auth/token?client_id=portal-insights'));
  assert.ok(browser.batches().every((b) => b.token));
});

test('when the portal gives no usable token the batch still goes, anonymous', async () => {
  const browser = new Browser({
    respond: (r) => r.url.includes('/_services/auth/token') ? { status: 200, body: '<html>sign in</html>' } : { status: 202 }
  });
  await browser.open(`${PORTAL}/`, { dataset: { endpoint: ENDPOINT, signedIn: 'true' } }).advance(1000);
  const [batch] = browser.batches();
  assert.equal(batch.token, undefined);
  assert.equal(batch.events.length, 1);
});

test('no token is asked for when the visitor is not signed in', async () => {
  const browser = new Browser();
  await browser.open(`${PORTAL}/`).advance(1000);
  assert.deepEqual(browser.requests.map((r) => r.url), ['https://func.example.net/api/collect']);
});

for (const [what, url, options] of [
  ['a /_services/ page', `${PORTAL}/_services/auth/login`, {}],
  ['a /_resources/ page', `${PORTAL}/_resources/x`, {}],
  ['no endpoint', `${PORTAL}/`, { dataset: {} }],
  ['Do Not Track, when respected', `${PORTAL}/`,
    { dataset: { endpoint: ENDPOINT, respectDnt: 'true' }, extra: { navigator: { doNotTrack: '1' } } }],
  ['Global Privacy Control, when respected', `${PORTAL}/`,
    { config: { endpoint: ENDPOINT, respectDnt: true }, extra: { navigator: { globalPrivacyControl: true } } }],
  ['consent required and not given', `${PORTAL}/`, { dataset: { endpoint: ENDPOINT, consent: 'required' } }]
]) {
  test(`nothing is kept or sent on ${what}`, async () => {
    const browser = new Browser();
    const page = browser.open(url, options);
    await page.hide();
    await page.advance(5000);
    assert.deepEqual(browser.requests, []);
    assert.deepEqual(browser.storage, {});
  });
}

test('Do Not Track is ignored unless the site asks to respect it', async () => {
  const browser = new Browser();
  await browser.open(`${PORTAL}/`, { extra: { navigator: { doNotTrack: '1' } } }).advance(1000);
  assert.equal(browser.batches().length, 1);
});

test('consent given later starts tracking on the same page', async () => {
  const browser = new Browser();
  const page = browser.open(`${PORTAL}/`, { dataset: { endpoint: ENDPOINT, consent: 'required' } });
  page.run('PortalInsights.track("case_form")'); // the search part may call before consent: ignored
  assert.deepEqual(browser.storage, {});
  page.run('PortalInsights.consent(true)');
  await page.advance(1000);
  assert.deepEqual(browser.batches().flatMap((b) => b.events.map((e) => e.type)), ['page_view']);
});

test('engaged time counts only while visible and is sent with the deepest scroll when hidden', async () => {
  const browser = new Browser();
  const page = browser.open(`${PORTAL}/long`);
  await page.advance(4000);
  page.window.scrollY = 1100; // of 3000 - 800 = 2200 scrollable: 50 %
  page.emit('scroll');
  page.window.scrollY = 200;
  page.emit('scroll');
  await page.hide();
  await page.advance(60000); // hidden: not engaged
  await page.show();
  await page.advance(2000);
  page.emit('pagehide');
  await page.advance(1000);
  const engagement = browser.batches().flatMap((b) => b.events).filter((e) => e.type === 'engagement');
  assert.deepEqual(engagement.map((e) => [e.engaged_ms, e.scroll]), [[4000, 50], [2000, 50]]);
});

test('a case form page and a confirmation page with a ticket number are reported', async () => {
  const browser = new Browser();
  browser.open(`${PORTAL}/support/create-case/`);
  browser.open(`${PORTAL}/support/create-case/?done=1`,
    { dom: { '[data-ticket-number]': { textContent: '  CAS-01234-X1Y2Z3\n' } } });
  const events = browser.outbox().map((x) => [x.e.type, x.e.ticket]);
  assert.deepEqual(events, [['page_view', undefined], ['case_form', undefined], ['page_view', undefined],
    ['case_form', undefined], ['case_submitted', 'CAS-01234-X1Y2Z3']]);
});

test('the search part is loaded from next to the beacon, only on the search page with a query', () => {
  const browser = new Browser();
  const src = 'https://func.example.net/api/beacon.js?v=2';
  assert.deepEqual(browser.open(`${PORTAL}/search/?q=vpn`, { src }).appended.map((s) => s.src),
    ['https://func.example.net/api/beacon-search.js?v=2']);
  assert.deepEqual(browser.open(`${PORTAL}/search/`, { src }).appended, []);
  assert.deepEqual(browser.open(`${PORTAL}/kb`, { src }).appended, []);
  assert.deepEqual(browser.open(`${PORTAL}/search/?q=vpn`, { src: '' }).appended, []); // inline install
});

// The search part, run after the beacon on the search page.
function searchPage (browser, dom, query = 'reset password') {
  const page = browser.open(`${PORTAL}/search/?q=${encodeURIComponent(query)}`, { dom });
  const observers = [];
  page.window.MutationObserver = class {
    constructor (fn) { this.fn = fn; observers.push(this); }
    observe () { this.on = true; }
    disconnect () { this.on = false; }
  };
  page.mutate = () => observers.filter((o) => o.on).forEach((o) => o.fn());
  page.run(SEARCH);
  return page;
}

test('the search count is taken when results render late; zero when only a message renders', async () => {
  const browser = new Browser();
  const box = { children: [] };
  const dom = { '.search-results': box, '.search-results a *': [] };
  const page = searchPage(browser, dom);
  await page.advance(500);
  box.children = [1, 2, 3];
  dom['.search-results a *'] = [1, 2];
  box.querySelectorAll = () => dom['.search-results a *'];
  page.mutate();
  page.mutate(); // later mutations do not send it again
  const empty = { children: [{}], querySelectorAll: () => [] };
  searchPage(browser, { '.search-results': empty }, 'zzzz');
  const searches = browser.outbox().filter((x) => x.e.type === 'search').map((x) => [x.e.query, x.e.results]);
  assert.deepEqual(searches, [['reset password', 2], ['zzzz', 0]]);
});

test('a search whose results never render is sent without a count after 5 seconds', async () => {
  const browser = new Browser();
  const page = searchPage(browser, {});
  await page.advance(4999);
  assert.equal(browser.outbox().filter((x) => x.e.type === 'search').length, 0);
  await page.advance(1);
  const search = browser.outbox().find((x) => x.e.type === 'search').e;
  assert.equal(search.query, 'reset password');
  assert.ok(!('results' in search));
});

test('a click on the second result reports its position and target; other clicks nothing', () => {
  const browser = new Browser();
  const links = [{ href: `${PORTAL}/kb/1` }, { href: `${PORTAL}/kb/2` }];
  const page = searchPage(browser, { '.search-results a *': links });
  const click = (target) => page.listeners.click.forEach((fn) => fn({ target }));
  click({ closest: (selector) => selector === '.search-results a' ? links[1] : null });
  click({ closest: () => null });
  const clicks = browser.outbox().filter((x) => x.e.type === 'search_click').map((x) => x.e);
  assert.deepEqual(clicks.map((e) => [e.query, e.position, e.target]), [['reset password', 2, `${PORTAL}/kb/2`]]);
});

test('a long search is cut to 256 characters', () => {
  const browser = new Browser();
  searchPage(browser, { '.search-results': { children: [{}], querySelectorAll: () => [] } }, 'x'.repeat(300));
  const search = browser.outbox().find((x) => x.e.type === 'search').e;
  assert.equal(search.query.length, 256);
});

test('storage that refuses everything breaks nothing on the page', async () => {
  const browser = new Browser();
  browser.storage = new Proxy({}, {
    get () { throw new DOMException('denied', 'SecurityError'); },
    set () { throw new DOMException('denied', 'QuotaExceededError'); }
  });
  const page = browser.open(`${PORTAL}/`);
  await page.hide();
  await page.advance(2000);
  assert.deepEqual(browser.requests, []);
});

test('a search left before its results render goes out with the page, count unknown', async () => {
  for (const how of ['hide', 'leave']) {
    const browser = new Browser();
    const page = searchPage(browser, { '.search-results': { children: [] } });
    await page.advance(1500); // the page view is sent; the results have not rendered
    await page[how]();
    const searches = browser.batches().flatMap((b) => b.events).filter((e) => e.type === 'search');
    assert.deepEqual(searches.map((e) => [e.query, 'results' in e]), [['reset password', false]], how);
    await page.advance(6000); // the 5-second fallback does not send it again
    assert.equal(browser.outbox().filter((x) => x.e.type === 'search').length, 0);
    assert.equal(browser.batches().flatMap((b) => b.events).filter((e) => e.type === 'search').length, 1);
  }
});

test('a search counted before the page is left is not sent twice', async () => {
  const browser = new Browser();
  const page = searchPage(browser, { '.search-results': { children: [{}], querySelectorAll: () => [1, 2] } });
  await page.hide();
  await page.leave();
  const searches = browser.batches().flatMap((b) => b.events).filter((e) => e.type === 'search');
  assert.deepEqual(searches.map((e) => e.results), [2]);
});

test('the count is the total the page shows, not the links on this page of results', () => {
  const results = { children: [{}], querySelectorAll: () => new Array(10) };
  const cases = [
    ['Results 1 – 10 of 57', 57], ['1,234 results', 1234], ['Ergebnisse 1 - 10 von 1.234', 1234],
    ['1 – 10 sur 1 234 résultats', 1234], ['no number here', 10], [null, 10]
  ];
  for (const [text, expected] of cases) {
    const browser = new Browser();
    const dom = { '.search-results': results };
    if (text !== null) dom['[data-search-total]'] = { textContent: text };
    searchPage(browser, dom);
    assert.equal(browser.outbox().find((x) => x.e.type === 'search').e.results, expected, String(text));
  }
  const browser = new Browser(); // a configured selector
  const page = browser.open(`${PORTAL}/search/?q=vpn`, {
    dom: { '.search-results': results, '#hits': { textContent: 'Showing 10 of 42' } },
    dataset: { endpoint: 'https://func.example.net/api/collect', total: '#hits' }
  });
  page.window.MutationObserver = class { observe () {} disconnect () {} };
  page.run(SEARCH);
  assert.equal(browser.outbox().find((x) => x.e.type === 'search').e.results, 42);
});
