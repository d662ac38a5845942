#!/usr/bin/env node
/*
 * The published happn-3 client (13.x) against a secure pathmq broker (reference: SECURITY
 * CLIENT): a password login as _ADMIN (session token and user), set and get, a wrong
 * password refused with AccessDenied, a login with the token, logout() (the token is
 * revoked: the client is disconnected, and the token no longer logs in), and a user with
 * limited permissions refused a set outside them.
 *
 * Usage: node happn3_secure.js <port> <admin password> <limited user> <limited password>
 *   The limited user may `set` and `get` on /limited/* only (the Rust test creates it).
 * Prints one line `PATHMQ_RESULT <json>` and exits 0 when every step passed, 1 otherwise.
 * Every step has its own timeout, so a broker that stays silent fails the script instead
 * of hanging it.
 */
'use strict';

const HappnClient = require('happn-3').client;

const STEP_TIMEOUT_MS = 10000;
const [portText, adminPassword, limitedUser, limitedPassword] = process.argv.slice(2);
const port = Number(portText);

function report(result) {
  process.stdout.write(`PATHMQ_RESULT ${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

if (!Number.isInteger(port) || port <= 0 || !adminPassword || !limitedUser || !limitedPassword) {
  report({
    ok: false,
    stage: 'arguments',
    error: 'usage: happn3_secure.js <port> <admin password> <limited user> <limited password>',
  });
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

/** The error `promise` is rejected with; fails the step if it resolves. */
async function rejection(what, promise) {
  let outcome;
  try {
    outcome = await within(what, promise);
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected an error, got ${JSON.stringify(outcome)}`);
}

/** The parts of an error the Rust test checks. */
function describe(error) {
  return { name: error && error.name, code: error && error.code, message: error && error.message, text: String(error) };
}

/** A secure client; `config` adds the credentials. No login retries: a refusal is final. */
function create(config) {
  return HappnClient.create({
    config: { host: '127.0.0.1', port, callTimeout: STEP_TIMEOUT_MS, loginRetry: 0, ...config },
    secure: true,
    utils: { logLevel: 'warn' },
  });
}

async function main() {
  const result = { ok: true };
  const clients = [];
  try {
    // Password login as _ADMIN: the session has a token and the user.
    const admin = await within('admin login', create({ username: '_ADMIN', password: adminPassword }));
    clients.push(admin);
    check(typeof admin.session.token === 'string' && admin.session.token.length > 0, 'no session token');
    // The cookie a browser client writes is the one HTTP routes read.
    check(admin.session.cookieName === 'pathmq_token', `cookieName ${admin.session.cookieName}`);
    check(admin.serverInfo && admin.serverInfo.cookieName === 'pathmq_token', `serverInfo ${JSON.stringify(admin.serverInfo)}`);
    check(admin.session.user && admin.session.user.username === '_ADMIN', `session user ${JSON.stringify(admin.session.user)}`);
    result.admin = { user: admin.session.user.username, hasToken: true };

    const set = await within('admin set', admin.set('/secure/happn3/item', { hello: 'secure' }));
    check(set.hello === 'secure', `set answered ${JSON.stringify(set)}`);
    const got = await within('admin get', admin.get('/secure/happn3/item'));
    check(got && got.hello === 'secure', `get answered ${JSON.stringify(got)}`);
    result.get = got;

    // A wrong password.
    const wrong = await rejection('wrong password', create({ username: '_ADMIN', password: 'not-the-password' }));
    result.wrongPassword = describe(wrong);
    check(wrong.name === 'AccessDenied', `wrong password error ${JSON.stringify(result.wrongPassword)}`);

    // A login with the token of the first session.
    const byToken = await within('token login', create({ token: admin.session.token }));
    clients.push(byToken);
    check(byToken.session.user.username === '_ADMIN', `token session user ${JSON.stringify(byToken.session.user)}`);
    const viaToken = await within('token get', byToken.get('/secure/happn3/item'));
    check(viaToken && viaToken.hello === 'secure', `token get answered ${JSON.stringify(viaToken)}`);
    result.tokenLogin = { user: byToken.session.user.username };

    // logout(): the token is revoked and the client disconnected.
    const loggedOut = await within('logout session', create({ username: '_ADMIN', password: adminPassword }));
    const revokedToken = loggedOut.session.token;
    await within('logout', loggedOut.logout());
    const afterLogout = await rejection('get after logout', loggedOut.get('/secure/happn3/item'));
    result.afterLogout = describe(afterLogout);
    const reused = await rejection('revoked token login', create({ token: revokedToken }));
    result.revokedToken = describe(reused);
    check(reused.name === 'AccessDenied', `revoked token error ${JSON.stringify(result.revokedToken)}`);

    // A user with limited permissions.
    const limited = await within('limited login', create({ username: limitedUser, password: limitedPassword }));
    clients.push(limited);
    const own = await within('limited set', limited.set('/limited/item', { mine: true }));
    check(own.mine === true, `limited set answered ${JSON.stringify(own)}`);
    const denied = await rejection('limited set outside', limited.set('/secure/happn3/item', { theirs: true }));
    result.limitedDenied = describe(denied);
    check(denied.name === 'AccessDenied', `limited set error ${JSON.stringify(result.limitedDenied)}`);
    const untouched = await within('admin get again', admin.get('/secure/happn3/item'));
    check(untouched.theirs === undefined, `the refused set was stored: ${JSON.stringify(untouched)}`);
  } catch (error) {
    result.ok = false;
    result.stage = stage;
    result.error = error && (error.stack || error.message || String(error));
  }
  for (const client of clients) {
    await within('disconnect', client.disconnect()).catch(() => undefined);
  }
  report(result);
}

main().catch((error) => report({ ok: false, stage, error: error && (error.stack || error.message || String(error)) }));
