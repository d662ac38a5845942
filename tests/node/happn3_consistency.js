#!/usr/bin/env node
/*
 * Consistency levels (reference: CONSISTENCY) with the published happn-3 client: two
 * subscribers (happn-3 clients acknowledge ACKNOWLEDGED events themselves), and a writer
 * whose `onPublished` handler gets the publication results for DEFERRED (1) and
 * ACKNOWLEDGED (3).
 *
 * Usage: node happn3_consistency.js <port>
 * Prints one line `PATHMQ_RESULT <json>` and exits 0 when every step passed, 1 otherwise.
 */
'use strict';

const HappnClient = require('happn-3').client;

const STEP_TIMEOUT_MS = 10000;
const port = Number(process.argv[2]);
let stage = 'start';

function report(result) {
  process.stdout.write(`PATHMQ_RESULT ${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

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

function create() {
  return HappnClient.create({
    config: { host: '127.0.0.1', port, callTimeout: STEP_TIMEOUT_MS, loginRetry: 0 },
    utils: { logLevel: 'warn' },
  });
}

/// A set whose onPublished results are awaited too.
function setWithResults(client, path, data, consistency) {
  return new Promise((resolve, reject) => {
    let answered = false;
    client.set(path, data, {
      consistency,
      onPublished: (e, results) => (e ? reject(e) : resolve({ answered, results })),
    }, (e) => {
      if (e) reject(e);
      answered = true;
    });
  });
}

async function main() {
  const writer = await within('connect writer', create());
  const subscribers = [await within('connect sub 1', create()), await within('connect sub 2', create())];
  const result = { ok: true };
  try {
    const heard = [];
    for (const sub of subscribers) {
      await within('on', sub.on('/pathmq/consistency/*', (data, meta) => heard.push(meta.consistency)));
    }
    const deferred = await within('deferred', setWithResults(writer, '/pathmq/consistency/a', { n: 1 }, 1));
    check(deferred.results.successful === 2 && deferred.results.queued === 2, `deferred results ${JSON.stringify(deferred.results)}`);
    check(deferred.results.failed === 0 && deferred.results.skipped === 0, `deferred results ${JSON.stringify(deferred.results)}`);
    result.deferred = deferred.results;

    const acknowledged = await within('acknowledged', setWithResults(writer, '/pathmq/consistency/b', { n: 2 }, 3));
    check(acknowledged.answered, 'onPublished came before the set answer');
    check(acknowledged.results.acknowledged === 2, `acknowledged results ${JSON.stringify(acknowledged.results)}`);
    check(acknowledged.results.successful === 2, `acknowledged results ${JSON.stringify(acknowledged.results)}`);
    result.acknowledged = acknowledged.results;
    // The happn-3 client sends `ack` before it calls the handler: wait for the handlers.
    await within('handlers', new Promise((resolve) => {
      const poll = () => (heard.filter((c) => c === 3).length === 2 ? resolve() : setTimeout(poll, 10));
      poll();
    }));
  } finally {
    await Promise.all([writer, ...subscribers].map((c) => c.disconnect().catch(() => {})));
  }
  report(result);
}

main().catch((error) => report({ ok: false, stage, error: String(error && error.stack || error) }));
