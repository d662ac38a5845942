#!/usr/bin/env node
/*
 * The published happn-3 client (13.x) against a pathmq broker: connect (configure-session,
 * describe, login), on, set, get, the remove event and off; then search (criteria, fields,
 * sort, skip, limit, $regex), count, getPaths, once, publish, increment, merge, and
 * offPath, each as the reference (happn-3 README) shows it.
 *
 * Usage: node happn3_client.js <port>
 * Prints one line `PATHMQ_RESULT <json>` and exits 0 when every step passed, 1 otherwise.
 * Every step has its own timeout, so a broker that stays silent fails the script instead
 * of hanging it.
 */
'use strict';

const HappnClient = require('happn-3').client;

const STEP_TIMEOUT_MS = 10000;
const port = Number(process.argv[2]);

function report(result) {
  process.stdout.write(`PATHMQ_RESULT ${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

if (!Number.isInteger(port) || port <= 0) {
  report({ ok: false, stage: 'arguments', error: `usage: happn3_client.js <port>, got ${process.argv[2]}` });
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

// Events in arrival order, and waiters for the next one.
const events = [];
const waiters = [];
function onEvent(data, meta) {
  const waiter = waiters.shift();
  if (waiter) waiter({ data, meta });
  else events.push({ data, meta });
}
function nextEvent() {
  if (events.length) return Promise.resolve(events.shift());
  return new Promise((resolve) => waiters.push(resolve));
}

async function main() {
  const client = await within(
    'connect',
    HappnClient.create({
      config: { host: '127.0.0.1', port, callTimeout: STEP_TIMEOUT_MS, loginRetry: 0 },
      utils: { logLevel: 'warn' },
    })
  );
  const result = { ok: true, session: client.session.id };
  try {
    check(typeof client.session.id === 'string', 'the login answer has no session id');

    const handle = await within('on', client.on('/pathmq/happn3/*', onEvent));
    check(typeof handle === 'number', `on returned ${handle}`);

    const set = await within('set', client.set('/pathmq/happn3/item', { hello: 'world', n: 1 }));
    check(set.hello === 'world' && set.n === 1, `set answered ${JSON.stringify(set)}`);
    check(set._meta.path === '/pathmq/happn3/item', `set meta ${JSON.stringify(set._meta)}`);
    result.set = set;

    const setEvent = await within('set event', nextEvent());
    check(setEvent.data.hello === 'world', `event data ${JSON.stringify(setEvent.data)}`);
    check(setEvent.meta.action === '/SET@/pathmq/happn3/item', `event meta ${JSON.stringify(setEvent.meta)}`);
    check(setEvent.meta.channel === '/ALL@/pathmq/happn3/*', `event channel ${setEvent.meta.channel}`);
    check(setEvent.meta.sessionId === client.session.id, 'event sessionId is not the writer');
    result.event = setEvent;

    const got = await within('get', client.get('/pathmq/happn3/item'));
    check(got && got.hello === 'world' && got._meta.path === '/pathmq/happn3/item', `get answered ${JSON.stringify(got)}`);
    result.get = got;

    const list = await within('get glob', client.get('/pathmq/happn3/*'));
    check(Array.isArray(list) && list.length === 1 && list[0].n === 1, `get glob answered ${JSON.stringify(list)}`);

    const missing = await within('get missing', client.get('/pathmq/happn3/missing/x'));
    check(missing === null, `get of a missing path answered ${JSON.stringify(missing)}`);

    const number = await within('set number', client.set('/pathmq/happn3/number', 42));
    check(number.value === 42, `non-object set answered ${JSON.stringify(number)}`);
    const numberEvent = await within('number event', nextEvent());
    check(numberEvent.data.value === 42, `non-object event ${JSON.stringify(numberEvent.data)}`);

    const removed = await within('remove', client.remove('/pathmq/happn3/item'));
    check(removed.removed === 1, `remove answered ${JSON.stringify(removed)}`);
    const removeEvent = await within('remove event', nextEvent());
    check(removeEvent.meta.action === '/REMOVE@/pathmq/happn3/item', `remove event ${JSON.stringify(removeEvent.meta)}`);

    await within('off', client.off(handle));

    // SEARCH: the reference's example, criteria plus fields/sort/skip/limit.
    const users = [
      ['simon', 'Bishop', 'North'],
      ['jane', 'Emslie', 'South'],
      ['bob', 'Bishop', 'Nowhere'],
      ['amy', 'Emslie', 'West'],
      ['carl', 'Jones', 'East'],
    ];
    for (const [name, surname, region] of users) {
      await within('set user', client.set(`/pathmq/users/${name}`, { name, surname, region }));
    }
    const found = await within(
      'search',
      client.get('/pathmq/users/*', {
        criteria: {
          $or: [{ region: { $in: ['North', 'South', 'East', 'West'] } }, { town: { $in: ['North.Cape Town'] } }],
          surname: { $in: ['Bishop', 'Emslie'] },
        },
        options: { fields: { name: 1 }, sort: { name: 1 }, limit: 2, skip: 1 },
      })
    );
    check(
      Array.isArray(found) && found.map((u) => u.name).join() === 'jane,simon' && found[0].surname === undefined,
      `search answered ${JSON.stringify(found)}`
    );
    const regex = await within(
      'search regex',
      client.get('/pathmq/users/*', { criteria: { name: { $regex: ['^S', 'i'] } } })
    );
    check(regex.length === 1 && regex[0].name === 'simon', `regex search answered ${JSON.stringify(regex)}`);
    const counted = await within('count', client.count('/pathmq/users/*', { criteria: { surname: 'Bishop' } }));
    check(counted.value === 2, `count answered ${JSON.stringify(counted)}`);
    const paths = await within('getPaths', client.getPaths('/pathmq/users/*'));
    check(paths.length === 5 && paths[0]._meta.path === '/pathmq/users/amy', `getPaths answered ${JSON.stringify(paths)}`);

    // once: one event, then the listener is gone.
    const onceEvents = [];
    await within('once', client.once('/pathmq/once', (data) => onceEvents.push(data)));
    await within('once set', client.set('/pathmq/once', { n: 1 }));
    await within('once set 2', client.set('/pathmq/once', { n: 2 }));
    const control = await within('control on', client.on('/pathmq/control', onEvent));
    await within('control set', client.set('/pathmq/control', { done: true }));
    await within('control event', nextEvent());
    check(onceEvents.length === 1 && onceEvents[0].n === 1, `once handled ${JSON.stringify(onceEvents)}`);

    // PUBLISH: delivered, not stored, only _meta answered.
    const published = await within('publish', client.publish('/pathmq/control', { live: 1 }));
    check(published._meta.published === true, `publish answered ${JSON.stringify(published)}`);
    const live = await within('publish event', nextEvent());
    check(live.data.live === 1, `publish event ${JSON.stringify(live.data)}`);
    const stored = await within('get control', client.get('/pathmq/control'));
    check(stored.done === true && stored.live === undefined, `publish stored ${JSON.stringify(stored)}`);

    // INCREMENT: the event data is {gauge, value}; several gauges on one path.
    const gaugeHandle = await within('gauge on', client.on('/pathmq/gauge', onEvent));
    await within('increment', client.increment('/pathmq/gauge', 1));
    const gaugeEvent = await within('increment event', nextEvent());
    check(
      gaugeEvent.data.gauge === 'counter' && gaugeEvent.data.value === 1,
      `increment event ${JSON.stringify(gaugeEvent.data)}`
    );
    await within('increment custom', client.increment('/pathmq/gauge', 'custom', 3));
    await within('increment event 2', nextEvent());
    await within('decrement custom', client.increment('/pathmq/gauge', 'custom', -2));
    await within('increment event 3', nextEvent());
    const gauges = await within('get gauge', client.get('/pathmq/gauge'));
    check(gauges.counter.value === 1 && gauges.custom.value === 1, `gauges ${JSON.stringify(gauges)}`);
    await within('gauge off', client.off(gaugeHandle));

    // MERGING and offPath.
    await within('merge', client.set('/pathmq/control', { more: 2 }, { merge: true }));
    const merged = await within('merge event', nextEvent());
    check(merged.data.done === true && merged.data.more === 2, `merge event ${JSON.stringify(merged.data)}`);
    await within('offPath', client.offPath('/pathmq/control'));
    await within('off control', client.off(control).catch(() => undefined));

    await within('disconnect', client.disconnect());
  } catch (error) {
    result.ok = false;
    result.stage = stage;
    result.error = error && (error.stack || error.message || String(error));
  }
  report(result);
}

main().catch((error) => report({ ok: false, stage, error: error && (error.stack || error.message || String(error)) }));
