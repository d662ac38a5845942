#!/usr/bin/env node
/*
 * MQTT 5 through the npm `mqtt` package against a pathmq broker on 127.0.0.1:<port>
 * (driven by tests/tests/mqtt5_features/clients.rs):
 *
 * 1. Topic aliases set by the client: one publisher sets alias 1 on `na/one` and then
 *    publishes with an empty topic and alias 1 (MQTT 5 §3.3.4); another lets the library
 *    assign aliases (`autoAssignTopicAlias`). Every message has a Message Expiry Interval
 *    and User Properties.
 * 2. A subscriber of this package accepting 5 server aliases gets every message on its
 *    topic, with the remaining expiry (at most what was sent, [MQTT-3.3.2-6]) and the
 *    User Properties ([MQTT-3.3.2-17]).
 * 3. A durable subscriber (clean: false, Session Expiry 60 s) offline for 2.2 s: of a
 *    message with expiry 1 s and one with 60 s, only the second arrives
 *    ([MQTT-3.3.2-5]), with at most 58 s left.
 *
 * Usage: node mqtt5_alias_expiry.js <port>
 * Prints one line `PATHMQ_RESULT <json>` and exits 0 when every step passed, 1 otherwise.
 * Every step has its own timeout.
 */
'use strict';

const mqtt = require('mqtt');

const STEP_TIMEOUT_MS = 5000;
const port = Number(process.argv[2]);
let stage = 'start';

function report(result) {
  process.stdout.write(`PATHMQ_RESULT ${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

if (!Number.isInteger(port) || port <= 0) {
  report({ ok: false, stage: 'arguments', error: `usage: mqtt5_alias_expiry.js <port>, got ${process.argv[2]}` });
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects an MQTT 5 client; resolves with it and its CONNACK. Messages queue up. */
function connect(clientId, options = {}) {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: 5,
    clientId,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 0,
    connectTimeout: STEP_TIMEOUT_MS,
    ...options,
  });
  const messages = [];
  const waiters = [];
  client.on('message', (topic, payload, packet) => {
    const message = { topic, payload: payload.toString(), properties: packet.properties || {} };
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else messages.push(message);
  });
  client.nextMessage = () =>
    messages.length ? Promise.resolve(messages.shift()) : new Promise((resolve) => waiters.push(resolve));
  return within(
    `connect ${clientId}`,
    new Promise((resolve, reject) => {
      client.once('connect', (connack) => resolve({ client, connack }));
      client.once('error', reject);
    }),
  );
}

async function main() {
  const { client: subscriber } = await connect('node-sub', { properties: { topicAliasMaximum: 5 } });
  const granted = await within('subscribe na/#', subscriber.subscribeAsync('na/#', { qos: 1 }));
  check(granted[0].qos === 1, `SUBACK ${JSON.stringify(granted)}`);

  const { client: manual, connack } = await connect('node-pub-manual');
  const aliasMax = connack.properties && connack.properties.topicAliasMaximum;
  check(aliasMax >= 1, `the CONNACK announces a Topic Alias Maximum: ${JSON.stringify(connack.properties)}`);
  const { client: auto } = await connect('node-pub-auto', { autoAssignTopicAlias: true });

  const sent = [
    { by: manual, topic: 'na/one', wireTopic: 'na/one', alias: 1, expiry: 30, user: { origin: 'node', seq: '1' } },
    { by: manual, topic: 'na/one', wireTopic: '', alias: 1, expiry: 30, user: { seq: '2' } },
    { by: auto, topic: 'na/two', wireTopic: 'na/two', expiry: 20, user: { seq: '3' } },
    { by: auto, topic: 'na/two', wireTopic: 'na/two', expiry: 20, user: { seq: '4', tag: 'auto' } },
  ];
  for (const [n, m] of sent.entries()) {
    const properties = { messageExpiryInterval: m.expiry, userProperties: m.user };
    if (m.alias) properties.topicAlias = m.alias;
    const ack = await within(
      `publish ${n} (topic '${m.wireTopic}', alias ${m.alias})`,
      m.by.publishAsync(m.wireTopic, `m${n}`, { qos: 1, properties }),
    );
    check(!ack || !ack.reasonCode, `PUBACK reason ${ack && ack.reasonCode}`);
  }

  const received = [];
  for (const [n, m] of sent.entries()) {
    const got = await within(`receive message ${n}`, subscriber.nextMessage());
    received.push({ topic: got.topic, payload: got.payload, properties: got.properties });
    check(got.topic === m.topic && got.payload === `m${n}`, `message ${n}: ${JSON.stringify(got)}`);
    const left = got.properties.messageExpiryInterval;
    check(left >= m.expiry - 1 && left <= m.expiry, `message ${n}: expiry ${left} of ${m.expiry}`);
    check(
      JSON.stringify(got.properties.userProperties) === JSON.stringify(m.user),
      `message ${n}: user properties ${JSON.stringify(got.properties.userProperties)}`,
    );
  }

  // A durable subscriber, offline while the messages wait and one expires.
  const durable = { clean: false, properties: { sessionExpiryInterval: 60 } };
  const first = await connect('node-durable', durable);
  await within('subscribe nx/#', first.client.subscribeAsync('nx/#', { qos: 1 }));
  await within('disconnect node-durable', first.client.endAsync());
  await within('publish nx/short', manual.publishAsync('nx/short', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } }));
  await within('publish nx/long', manual.publishAsync('nx/long', 'long', { qos: 1, properties: { messageExpiryInterval: 60 } }));
  stage = 'offline';
  await sleep(2200);
  const back = await connect('node-durable', durable);
  check(back.connack.sessionPresent, 'the durable session was kept');
  const afterOffline = [];
  const longOne = await within('receive after offline', back.client.nextMessage());
  afterOffline.push(longOne.payload);
  check(longOne.payload === 'long', `the expired message must not be delivered: got ${longOne.payload} first`);
  const left = longOne.properties.messageExpiryInterval;
  check(left >= 1 && left <= 58, `remaining expiry after 2.2 s of 60 s: ${left}`);
  await within('publish nx/marker', manual.publishAsync('nx/marker', 'marker', { qos: 1 }));
  for (;;) {
    const got = await within('receive until the marker', back.client.nextMessage());
    if (got.payload === 'marker') break;
    afterOffline.push(got.payload);
  }

  stage = 'disconnect';
  await Promise.all([subscriber, manual, auto, back.client].map((c) => c.endAsync()));
  report({ ok: true, received, after_offline: afterOffline });
}

main().catch((error) => report({ ok: false, stage, error: String(error && error.stack ? error.stack : error) }));
