// A scripted page for the beacon's unit tests: runs the built scripts (dci/static, what the app
// serves) in a fresh V8 context with the few browser APIs they touch, a clock the test moves, and a
// fetch the test answers. The real browser runs are in tests/test_beacon.py (Chromium).
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import vm from 'node:vm';

const built = (name) => readFileSync(new URL(`../../dci/static/${name}`, import.meta.url), 'utf8');
export const CORE = built('beacon.js');
export const SEARCH = built('beacon-search.js');
export const START = Date.parse('2026-11-28T15:00:00.000Z');

// A browser profile: what outlives a page (localStorage, the clock, the network).
export class Browser {
  constructor ({ respond } = {}) {
    this.storage = {};
    this.clock = { t: START };
    this.requests = [];
    this.respond = respond || (() => ({ status: 202 }));
  }

  // Opens `url` with the beacon; `script` is its tag's data-* (dataset) and src.
  open (url, { dataset = { endpoint: 'https://func.example.net/api/collect' }, config, title = 'A page',
    referrer = '', dom = {}, src = 'https://func.example.net/api/beacon.js', extra = {} } = {}) {
    return new Page(this, url, { dataset, config, title, referrer, dom, src, extra });
  }

  // Sent collect batches, parsed.
  batches () {
    return this.requests.filter((r) => !r.url.includes('/_services/')).map((r) => JSON.parse(r.options.body));
  }

  outbox () {
    return JSON.parse(this.storage.pi || '{}').o || [];
  }
}

export class Page {
  constructor (browser, url, { dataset, config, title, referrer, dom, src, extra }) {
    this.browser = browser;
    this.listeners = {};
    this.timers = [];
    this.appended = [];
    const clock = browser.clock;
    const page = this;
    class FakeDate extends Date {
      constructor (...args) { super(...(args.length ? args : [clock.t])); }
      static now () { return clock.t; }
    }
    const location = new URL(url);
    const context = {
      Date: FakeDate,
      URLSearchParams,
      crypto: { randomUUID },
      atob,
      localStorage: browser.storage,
      navigator: {},
      innerHeight: 800,
      scrollY: 0,
      location,
      PortalInsightsConfig: config,
      setTimeout: (fn, ms = 0) => { page.timers.push({ at: clock.t + ms, fn }); return page.timers.length; },
      // Capture listeners run before the others (window is the first stop of a document's event).
      addEventListener: (type, fn, options) => {
        const capture = options === true || options?.capture;
        (page.listeners[type] ||= [])[capture ? 'unshift' : 'push'](fn);
      },
      fetch: async (target, options = {}) => {
        const request = { url: String(target), options };
        browser.requests.push(request);
        const answer = await browser.respond(request);
        if (answer instanceof Error) throw answer;
        return { status: answer.status, text: async () => answer.body || '' };
      },
      document: {
        currentScript: { dataset, src },
        title,
        referrer,
        hidden: false,
        documentElement: { scrollHeight: 3000 },
        head: { append: (element) => page.appended.push(element) },
        createElement: (tag) => ({ tag }),
        querySelector: (selector) => dom[selector] ?? null,
        querySelectorAll: (selector) => dom[selector + ' *'] || []
      },
      ...extra
    };
    context.window = context;
    this.window = vm.createContext(context);
    vm.runInContext(CORE, this.window);
  }

  run (code) {
    return vm.runInContext(code, this.window);
  }

  emit (type) {
    for (const fn of this.listeners[type] || []) fn({ type });
  }

  // Moves the clock on by `ms`, running the timers that fall due and letting their promises settle.
  async advance (ms) {
    const until = this.browser.clock.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.browser.clock.t = Math.max(this.browser.clock.t, due.at);
      due.fn();
      await settle();
    }
    this.browser.clock.t = until;
    await settle();
  }

  async hide () {
    this.window.document.hidden = true;
    this.emit('visibilitychange');
    await settle();
  }

  async leave () {
    this.window.document.hidden = true;
    this.emit('pagehide');
    await settle();
  }

  async show () {
    this.window.document.hidden = false;
    this.emit('visibilitychange');
    await settle();
  }
}

export async function settle () {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

// A Power-Pages-shaped ID token (unsigned: the beacon only reads `exp`), base64url as the portal sends.
export function idToken (exp, extra = {}) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub: randomUUID(), exp, ...extra })}.c2ln`;
}
