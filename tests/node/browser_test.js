#!/usr/bin/env node
/*
 * The browser client (protocols/native/browser/pathmq-client.js, served at
 * /browser_client) in headless Chromium against a pathmq broker, driven by
 * protocols/native/tests/browser.rs.
 *
 * Usage: node browser_test.js <http-url of the broker>
 * Prints one line `PATHMQ_RESULT <json>` and exits 0 when every step passed, 1 otherwise.
 * Near the end it prints `PATHMQ_SHUTDOWN` and waits for the broker to shut down (the Rust
 * side does that) to see the clients told `session-ended`.
 *
 * Steps: the script over HTTP (content type, ETag, 304, HEAD); in a page, two clients:
 * set/get/getPaths/count, on/event, several listeners on one channel, once, off (no more
 * events), publish, remove, a server error, heartbeats answered, a forced reconnection
 * (reconnect-scheduled, reconnect-successful, a queued request, the listener subscribed
 * again), then session-ended; against a mocked socket, the frames the client sends and
 * a request timeout. Every step has its own timeout.
 */
'use strict';

const { chromium } = require('playwright-core');

const STEP_TIMEOUT_MS = 10000;
const CHROMIUM = process.env.PATHMQ_CHROMIUM || '/usr/bin/chromium';
const base = process.argv[2];

function report(result) {
  process.stdout.write(`PATHMQ_RESULT ${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

if (!base || !/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
  report({ ok: false, stage: 'arguments', error: `usage: browser_test.js http://127.0.0.1:<port>, got ${base}` });
}

let stage = 'start';

function within(what, promise) {
  stage = what;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function check(condition, message) {
  if (!condition) throw new Error(`${stage}: ${message}`);
}

async function checkHttp(result) {
  const url = `${base}/browser_client`;
  const get = await within('GET /browser_client', fetch(url));
  const body = await get.text();
  check(get.status === 200, `status ${get.status}`);
  check(/^application\/javascript/.test(get.headers.get('content-type')), `content-type ${get.headers.get('content-type')}`);
  const etag = get.headers.get('etag');
  check(etag && get.headers.get('cache-control'), `etag ${etag}, cache-control ${get.headers.get('cache-control')}`);
  check(body.includes('PathmqClient'), 'the body is not the client script');

  const again = await within('GET /browser_client If-None-Match', fetch(url, { headers: { 'if-none-match': etag } }));
  check(again.status === 304, `a revalidation answered ${again.status}`);

  const head = await within('HEAD /browser_client', fetch(url, { method: 'HEAD' }));
  check(head.status === 200 && (await head.text()) === '', `HEAD answered ${head.status}`);
  check(Number(head.headers.get('content-length')) === Buffer.byteLength(body), `HEAD content-length ${head.headers.get('content-length')}`);

  const js = await within('GET /browser_client.js', fetch(`${base}/browser_client.js`));
  check(js.status === 200 && (await js.text()) === body, '/browser_client.js is not the same script');

  const post = await within('POST /browser_client', fetch(url, { method: 'POST' }));
  check(post.status === 405, `POST answered ${post.status}`);
  result.http = { etag, bytes: Buffer.byteLength(body) };
}

// Helpers defined in the page: event queues per listener name, and connection events.
function pageHelpers() {
  const queues = {};
  const queue = (name) => (queues[name] = queues[name] || { items: [], waiters: [] });
  const connEvents = [];
  let connWaiters = [];
  window.T = {
    listener(name) {
      const q = queue(name);
      return (data, meta) => {
        const waiter = q.waiters.shift();
        if (waiter) waiter({ data, meta });
        else q.items.push({ data, meta });
      };
    },
    next(name) {
      const q = queue(name);
      if (q.items.length) return Promise.resolve(q.items.shift());
      return new Promise((resolve) => q.waiters.push(resolve));
    },
    pending(name) {
      return queue(name).items.length;
    },
    watch(client, label) {
      const names = ['reconnect-scheduled', 'reconnect-successful', 'reconnect-error', 'connection-ended', 'session-ended'];
      names.forEach((name) =>
        client.onEvent(name, (data) => {
          connEvents.push({ label, name, data });
          const waiters = connWaiters;
          connWaiters = [];
          waiters.forEach((w) => w());
        })
      );
    },
    connEvents(label) {
      return connEvents.filter((e) => e.label === label).map((e) => e.name);
    },
    // The `nth` (from 1) connection event `name` of client `label`.
    async waitConn(label, name, nth = 1) {
      for (;;) {
        const found = connEvents.filter((e) => e.label === label && e.name === name)[nth - 1];
        if (found) return found;
        await new Promise((resolve) => connWaiters.push(resolve));
      }
    },
    check(condition, message) {
      if (!condition) throw new Error(message);
    },
    sleep(ms) {
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
  };
}

async function runPage(browser, result) {
  const page = await within('new page', browser.newPage());
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error && (error.stack || error))));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });

  // A page served by nobody, loading the client from the broker like any web app would.
  await within(
    'load the script',
    page.setContent(`<!doctype html><html><head><script src="${base}/browser_client"></script></head><body></body></html>`, {
      waitUntil: 'load',
    })
  );
  check(await page.evaluate(() => typeof window.PathmqClient === 'object'), 'PathmqClient is not defined');
  await page.evaluate(pageHelpers);

  result.connect = await within(
    'connect',
    page.evaluate(async () => {
      // The URL defaults to the server the script came from. `b` uses the callback form.
      window.a = await PathmqClient.create({ reconnect: { min: 50, max: 500 }, callTimeout: 5000 });
      window.b = await new Promise((resolve, reject) =>
        PathmqClient.create({ callTimeout: 5000 }, (e, client) => (e ? reject(e) : resolve(client)))
      );
      T.watch(a, 'a');
      T.watch(b, 'b');
      T.check(typeof a.session.id === 'string' && a.session.id !== b.session.id, 'no distinct session ids');
      T.check(a.status === 'active', `status ${a.status}`);
      return { url: a.url, a: a.session.id, b: b.session.id };
    })
  );
  check(result.connect.url === base.replace('http:', 'ws:') + '/', `default url ${result.connect.url}`);

  result.data = await within(
    'on, set, event, get',
    page.evaluate(async () => {
      const handle = await a.on('/browser/items/*', T.listener('items'));
      T.check(typeof handle === 'number', `on gave ${handle}`);
      window.itemsHandle = handle;

      const set = await b.set('/browser/items/one', { hello: 'world', n: 1 });
      T.check(set.hello === 'world' && set._meta.path === '/browser/items/one', `set answered ${JSON.stringify(set)}`);

      const event = await T.next('items');
      T.check(event.data.hello === 'world', `event data ${JSON.stringify(event.data)}`);
      T.check(event.meta.channel === '/ALL@/browser/items/*', `event channel ${event.meta.channel}`);
      T.check(event.meta.action === '/SET@/browser/items/one', `event action ${event.meta.action}`);
      T.check(event.meta.path === '/browser/items/one', `event path ${event.meta.path}`);
      T.check(event.meta.sessionId === b.session.id, 'event sessionId is not the writer');

      const got = await new Promise((resolve, reject) =>
        a.get('/browser/items/one', (e, item) => (e ? reject(e) : resolve(item)))
      );
      T.check(got.hello === 'world' && got.n === 1 && got._meta.path === '/browser/items/one', `get answered ${JSON.stringify(got)}`);

      const list = await a.get('/browser/items/*');
      T.check(Array.isArray(list) && list.length === 1 && list[0].n === 1, `get glob answered ${JSON.stringify(list)}`);
      T.check(list[0]._meta.path === '/browser/items/one', `get glob item meta ${JSON.stringify(list[0]._meta)}`);

      const missing = await a.get('/browser/items/missing');
      T.check(missing === null, `get of a missing path answered ${JSON.stringify(missing)}`);

      const paths = await a.getPaths('/browser/items/*');
      T.check(paths.length === 1 && paths[0]._meta.path === '/browser/items/one', `getPaths answered ${JSON.stringify(paths)}`);

      const count = await a.count('/browser/items/*');
      T.check(count.value === 1, `count answered ${JSON.stringify(count)}`);

      const number = await b.set('/browser/items/number', 42);
      T.check(number.value === 42, `non-object set answered ${JSON.stringify(number)}`);
      const numberEvent = await T.next('items');
      T.check(numberEvent.data.value === 42, `non-object event ${JSON.stringify(numberEvent.data)}`);
      return { set, event, got };
    })
  );

  result.listeners = await within(
    'several listeners, once, off, publish, remove',
    page.evaluate(async () => {
      // Two listeners on one channel both get each event; off(first) leaves the second.
      const first = await a.on('/browser/multi', T.listener('first'));
      await a.on('/browser/multi', T.listener('second'));
      await b.set('/browser/multi', { round: 1 });
      const [one, two] = [await T.next('first'), await T.next('second')];
      T.check(one.data.round === 1 && two.data.round === 1, 'both listeners get the event');
      T.check(one.data !== two.data, 'listeners share one data object');
      await a.off(first);
      await b.set('/browser/multi', { round: 2 });
      T.check((await T.next('second')).data.round === 2, 'the second listener lost the event');

      // once: a listener for one event.
      await a.once('/browser/once', T.listener('once'));
      await b.set('/browser/once', { n: 1 });
      T.check((await T.next('once')).data.n === 1, 'once got no event');
      await b.set('/browser/once', { n: 2 });

      // publish: delivered, not stored.
      const published = await b.publish('/browser/items/published', { fleeting: true });
      T.check(published._meta && published._meta.published === true, `publish answered ${JSON.stringify(published)}`);
      const publishedEvent = await T.next('items');
      T.check(publishedEvent.data.fleeting === true, `publish event ${JSON.stringify(publishedEvent.data)}`);
      T.check((await a.get('/browser/items/published')) === null, 'publish stored the data');

      // remove, and its event.
      const removed = await b.remove('/browser/items/one');
      T.check(removed.removed === 1, `remove answered ${JSON.stringify(removed)}`);
      const removeEvent = await T.next('items');
      T.check(removeEvent.meta.action === '/REMOVE@/browser/items/one', `remove event ${JSON.stringify(removeEvent.meta)}`);

      // off: no more events. A later event on another channel of the same client shows
      // that anything for the removed listener would have arrived by then.
      await a.off(itemsHandle);
      await a.on('/browser/control', T.listener('control'));
      await b.set('/browser/items/two', { after: 'off' });
      await b.set('/browser/control', { mark: 1 });
      T.check((await T.next('control')).data.mark === 1, 'no control event');
      T.check(T.pending('items') === 0, 'an event reached a listener after off');
      T.check(T.pending('once') === 0, 'a once listener got a second event');
      T.check(T.pending('first') === 0, 'an event reached the first listener after off');

      // offPath removes every listener under a path.
      await a.offPath('/browser/multi');
      await b.set('/browser/multi', { round: 3 });
      await b.set('/browser/control', { mark: 2 });
      T.check((await T.next('control')).data.mark === 2, 'no second control event');
      T.check(T.pending('second') === 0, 'an event reached a listener after offPath');

      // A server error rejects with an Error carrying the code.
      let error = null;
      try {
        await b.set('/browser/*', { wildcard: true });
      } catch (e) {
        error = e;
      }
      T.check(error instanceof Error && error.code === 400, `a wildcard set gave ${error && error.code}: ${error}`);
      return { removed, error: { name: error.name, code: error.code, message: error.message } };
    })
  );

  result.heartbeat = await within(
    'heartbeats answered',
    page.evaluate(async () => {
      // The broker pings every 300 ms, but only after a tick that saw a frame from the
      // client. Three more pings on the same socket with nothing else sent: they were
      // answered.
      const socket = a._socket;
      const start = a._heartbeats;
      while (a._heartbeats < start + 3) await T.sleep(50);
      T.check(a._socket === socket && a.status === 'active', 'the socket was replaced');
      T.check(T.connEvents('a').length === 0, `connection events ${T.connEvents('a')}`);
      return { answered: a._heartbeats };
    })
  );

  result.reconnect = await within(
    'reconnect',
    page.evaluate(async () => {
      await a.on('/browser/reconnect/*', T.listener('reconnect'));
      const before = a.session.id;
      a._socket.close();
      // Sent while the socket closes: waits for the reconnection, then goes out.
      const queued = a.set('/browser/reconnect/queued', { queued: true });
      const scheduled = await T.waitConn('a', 'reconnect-scheduled');
      await T.waitConn('a', 'reconnect-successful');
      T.check(a.status === 'active', `status ${a.status}`);
      T.check(a.session.id !== before, 'no new session after the reconnection');
      const names = T.connEvents('a');
      T.check(
        names.indexOf('connection-ended') < names.indexOf('reconnect-scheduled') &&
          names.indexOf('reconnect-scheduled') < names.indexOf('reconnect-successful'),
        `events in the wrong order: ${names}`
      );
      const queuedAnswer = await queued;
      T.check(queuedAnswer.queued === true, `the queued set answered ${JSON.stringify(queuedAnswer)}`);
      const queuedEvent = await T.next('reconnect');
      T.check(queuedEvent.data.queued === true, 'no event for the queued set');

      // The listener was subscribed again on the new session.
      await b.set('/browser/reconnect/after', { after: true });
      const event = await T.next('reconnect');
      T.check(event.data.after === true && event.meta.sessionId === b.session.id, `event after reconnecting ${JSON.stringify(event)}`);
      T.check(event.meta.channel === '/ALL@/browser/reconnect/*', `channel ${event.meta.channel}`);
      return { scheduled: scheduled.data, events: names, session: a.session.id };
    })
  );

  // The broker shuts down: each client is told why (session-ended), then reconnects in
  // vain until disconnected.
  process.stdout.write('PATHMQ_SHUTDOWN\n');
  result.sessionEnded = await within(
    'session-ended',
    page.evaluate(async () => {
      const ended = await T.waitConn('a', 'session-ended');
      await T.waitConn('b', 'session-ended');
      await T.waitConn('a', 'reconnect-scheduled', 2);
      await a.disconnect();
      await b.disconnect();
      let error = null;
      try {
        await a.get('/browser/items/two');
      } catch (e) {
        error = e;
      }
      T.check(error && error.code === 'ENOTCONN', `a request after disconnect gave ${error}`);
      T.check(a.status === 'disconnected', `status ${a.status}`);
      return ended.data;
    })
  );
  check(typeof result.sessionEnded.reason === 'string', `session-ended gave ${JSON.stringify(result.sessionEnded)}`);

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('\n')}`);
  await page.close();
}

// Against a mocked WebSocket (no broker): the frames the client sends, exactly, and a
// request the server never answers.
async function runMock(browser, result) {
  const page = await within('new mock page', browser.newPage());
  const frames = [];
  await page.routeWebSocket('ws://mock.pathmq.test/', (ws) => {
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      frames.push(frame);
      if (typeof frame === 'string') return;
      const answer = (data) =>
        ws.send(JSON.stringify({ data, _meta: { type: 'response', status: 'ok', eventId: frame.eventId, sessionId: 'mock-session', action: frame.action } }));
      if (frame.action === 'login') answer({ id: 'mock-session' });
      else if (frame.action === 'describe') answer({ name: 'mock', secure: false });
      else if (frame.path !== '/never') answer(frame.action === 'on' ? { id: 7 } : { echoed: true });
    });
    ws.send(JSON.stringify('primus::ping::1234'));
  });
  await within('load the script (mock)', page.setContent(`<script src="${base}/browser_client"></script>`, { waitUntil: 'load' }));
  result.mock = await within(
    'mocked socket',
    page.evaluate(async () => {
      const c = await PathmqClient.create({ url: 'ws://mock.pathmq.test/', callTimeout: 300, reconnect: false });
      await c.setSibling('/m/siblings', { s: 1 });
      await c.increment('/m/gauge', 'custom', 3);
      await c.increment('/m/gauge');
      await c.get('/m/users/*', { criteria: { age: { $gt: 30 } }, options: { limit: 2 } });
      await c.on('/m/depth/**', () => {});
      let error = null;
      try {
        await c.get('/never');
      } catch (e) {
        error = e;
      }
      await c.disconnect();
      return { code: error && error.code, name: error && error.name, message: error && error.message };
    })
  );
  check(result.mock.code === 'ETIMEDOUT' && /timed out after 300 ms: get \/never/.test(result.mock.message), `timeout gave ${JSON.stringify(result.mock)}`);

  const find = (pred, what) => {
    const frame = frames.find(pred);
    check(frame, `no ${what} frame in ${JSON.stringify(frames)}`);
    return frame;
  };
  check(frames.includes('primus::pong::1234'), `the ping was not answered: ${JSON.stringify(frames)}`);
  const configure = find((f) => f.action === 'configure-session', 'configure-session');
  check(configure.data.protocol === 'happn_4' && configure.data.browser === true, `configure-session ${JSON.stringify(configure)}`);
  const login = find((f) => f.action === 'login', 'login');
  check(login.data.info._browser === true && login.data.protocol === 'happn_4', `login ${JSON.stringify(login)}`);
  const sibling = find((f) => f.path === '/m/siblings', 'setSibling');
  check(
    sibling.action === 'set' && sibling.options.set_type === 'sibling' && sibling.options.setSibling === true && sibling.data.s === 1 && sibling.sessionId === 'mock-session' && typeof sibling.eventId === 'number',
    `setSibling ${JSON.stringify(sibling)}`
  );
  const increments = frames.filter((f) => f.path === '/m/gauge');
  check(
    increments.length === 2 && increments[0].data === 'custom' && increments[0].options.increment === 3 && increments[1].data === 'counter' && increments[1].options.increment === 1,
    `increment ${JSON.stringify(increments)}`
  );
  const search = find((f) => f.path === '/m/users/*', 'search');
  check(search.action === 'get' && search.options.criteria.age.$gt === 30 && search.options.options.limit === 2, `get with criteria ${JSON.stringify(search)}`);
  const on = find((f) => f.action === 'on', 'on');
  check(on.path === '/ALL@/m/depth/**' && on.options.depth === 5 && on.options.event_type === 'all', `on ${JSON.stringify(on)}`);
  const keys = new Set(['action', 'eventId', 'path', 'data', 'options', 'sessionId']);
  frames
    .filter((f) => typeof f === 'object')
    .forEach((f) => check(Object.keys(f).every((k) => keys.has(k)), `unexpected field in ${JSON.stringify(f)}`));
  result.mockFrames = frames.length;
  await page.close();
}

async function main() {
  const result = { ok: true };
  let browser = null;
  try {
    await checkHttp(result);
    browser = await within(
      'launch chromium',
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: STEP_TIMEOUT_MS })
    );
    await runMock(browser, result);
    await runPage(browser, result);
  } catch (error) {
    result.ok = false;
    result.stage = stage;
    result.error = error && (error.stack || error.message || String(error));
  }
  if (browser) await within('close chromium', browser.close()).catch(() => {});
  report(result);
}

main().catch((error) => report({ ok: false, stage, error: error && (error.stack || error.message || String(error)) }));
