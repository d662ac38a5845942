/*
 * pathmq browser client: the happn-3 client's API over pathmq's native protocol.
 * No dependencies; served by the broker at /browser_client (and /browser_client.js).
 *
 * Load it from the broker and create a client:
 *
 *   <script src="http://localhost:55000/browser_client"></script>
 *   <script>
 *     PathmqClient.create({ reconnect: { min: 500, max: 30000 } }).then(async (client) => {
 *       const handle = await client.on('/sensors/*', (data, meta) => console.log(meta.path, data));
 *       await client.set('/sensors/kitchen', { temp: 21 });
 *       const item = await client.get('/sensors/kitchen'); // { temp: 21, _meta: {...} }
 *       await client.off(handle);
 *     });
 *   </script>
 *
 * Every method returns a promise, or takes a node-style callback as its last argument
 * instead (then it returns nothing): client.set(path, data, (error, result) => {}).
 *
 * PathmqClient.create(options?) -> client
 *   url            WebSocket endpoint: 'ws://host:port/', or an http(s) URL (turned into
 *                  ws(s), path '/' when none). Default: the server this script was loaded
 *                  from, else the page's own server.
 *   username, password, token, info   login data (a server with security off takes any)
 *   useCookie      on a secure server, log in with the session cookie of an earlier login
 *   reconnect      { min, max, retries }: backoff in ms between reconnection attempts,
 *                  doubling from min up to max (default 500 / 30000, retries unlimited);
 *                  false: never reconnect
 *   callTimeout    ms a request waits for its answer (default 30000); per call with
 *                  options.timeout
 *   connectTimeout ms the first connection and login may take (default 30000)
 *   pingTimeout    ms without a frame, once the server has sent a heartbeat, before the
 *                  socket is taken as dead and replaced (default 45000; false: never)
 *   defaultVariableDepth   depth of a '/**' subscription given none (default 5)
 *   WebSocket      the WebSocket class to use (default: the global one; in node < 22,
 *                  pass require('ws'))
 *
 * Data (results are the stored value with its _meta, as in happn-3):
 *   set(path, data, options?)        options: merge, noStore, noPublish, meta,
 *                                    consistency (0-3), onPublished(error, results), tag
 *   get(path, options?)              an object or null; an array for a path with '*';
 *                                    options: { criteria, options: { fields, sort,
 *                                    limit, skip } } passed through to the server
 *   getPaths(path)                   [{ _meta: { path } }, ...]
 *   count(path, options?)            { value: N }
 *   remove(path, options?)           { removed: N }
 *   publish(path, data, options?)    set with noStore: published, not stored; { _meta }
 *   setSibling(path, data)           set at a new unique path under path
 *   increment(path, gauge?, by?)     add by (default 1) to gauge (default 'counter')
 *
 * Events:
 *   on(path, options?, handler(data, meta)) -> handle
 *       options: event_type 'all' | 'set' | 'remove' (default all); count: N (the
 *       listener is removed after N events); depth (for '/**' paths); meta;
 *       initialEmit (handler is called with each stored match first); initialCallback
 *       (the stored matches are given back: callback(error, handle, items), or the
 *       promise resolves [handle, items]).
 *       meta carries channel ('/ALL@/sensors/*'), action ('/SET@/sensors/kitchen'),
 *       path, created, modified, sessionId (the writer's), publicationId, custom meta.
 *   once(path, options?, handler)    on with count 1
 *   onAll(handler)                   every event ('/ALL@*')
 *   off(handle), offPath(path), offAll()
 *
 * Connection:
 *   onEvent(name, fn) -> id, offEvent(id). Names: 'session-ended' ({reason}: the server
 *   ended the session), 'connection-ended', 'reconnect-scheduled' ({attempt, delay}),
 *   'reconnect-successful' ({attempt}), 'reconnect-error' ({attempt, error}),
 *   'reconnect-timeout' (retries used up), 'error' (a listener's handler threw, an
 *   automatic off failed).
 *   After a reconnection the client logs in again (a new session) and subscribes every
 *   live listener again; requests made meanwhile wait (within their timeout) and are sent
 *   then. Requests in flight when the connection dropped fail with code 'ECONNRESET':
 *   whether a set reached the server is unknown.
 *   disconnect(options?)             options: deleteCookie
 *   client.session (the login answer, session.id), client.serverInfo, client.status
 *   ('connecting', 'active', 'reconnecting', 'disconnected').
 *
 * Errors are Error objects with a name and a code: the server's ({name:'BadRequest',
 * code:400}, 401, 403, 404, 413, 429, 500), or the client's: 'ETIMEDOUT' (no answer in
 * time), 'ECONNRESET' (connection lost before the answer), 'ENOTCONN' (client
 * disconnected), 'EINVAL' (bad arguments).
 *
 * Wire: JSON text frames {action, eventId, path, data, options, sessionId} on a WebSocket
 * (the happn-3 `happn_4` envelope); the server's "primus::ping::<ms>" heartbeats are
 * answered "primus::pong::<ms>".
 */
(function (root, factory) {
  'use strict';
  var api = factory(root);
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else if (root) root.PathmqClient = api;
})(typeof self !== 'undefined' ? self : typeof globalThis !== 'undefined' ? globalThis : this, function (root) {
  'use strict';

  var PROTOCOL = 'happn_4';
  var VERSION = '0.1.0';
  var DEFAULTS = {
    callTimeout: 30000,
    connectTimeout: 30000,
    pingTimeout: 45000,
    defaultVariableDepth: 5,
    reconnect: { min: 500, max: 30000, retries: Infinity },
  };
  var browser = typeof window !== 'undefined' && typeof document !== 'undefined';

  // The server this script was loaded from, read while the script runs.
  var scriptOrigin = null;
  try {
    if (browser && document.currentScript && document.currentScript.src) {
      scriptOrigin = new URL(document.currentScript.src).origin;
    }
  } catch (e) {
    scriptOrigin = null;
  }

  function clientError(name, code, message) {
    var error = new Error(message);
    error.name = name;
    error.code = code;
    return error;
  }

  // An error answer's `_meta.error` ({name, code, message, ...}) as an Error.
  function serverError(meta) {
    var detail = (meta && meta.error) || {};
    if (typeof detail !== 'object') detail = { message: String(detail) };
    var error = new Error(detail.message || 'request failed');
    Object.keys(detail).forEach(function (k) {
      if (k !== 'message') error[k] = detail[k];
    });
    error.name = detail.name || 'ServerError';
    if (error.code === undefined) error.code = 500;
    return error;
  }

  function wsUrl(url) {
    var base = url || scriptOrigin || (browser && root.location && root.location.origin);
    if (!base) throw clientError('ConfigError', 'EINVAL', 'no url given and no page to take one from');
    var parsed = new URL(base);
    if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
    else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
      throw clientError('ConfigError', 'EINVAL', 'url must be ws(s) or http(s): ' + base);
    }
    if (!parsed.pathname) parsed.pathname = '/';
    return parsed.toString();
  }

  // Splits node-style arguments: the last argument is the callback when it is a function.
  function splitCallback(args) {
    args = Array.prototype.slice.call(args);
    var callback = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    return { args: args, callback: callback };
  }

  // Settles `promise` through `callback` when there is one (returning nothing), else
  // returns the promise. `spread` passes an array result as separate callback arguments.
  function settle(promise, callback, spread) {
    if (!callback) return promise;
    promise.then(
      function (result) {
        if (spread && Array.isArray(result)) callback.apply(null, [null].concat(result));
        else callback(null, result);
      },
      function (error) { callback(error); }
    );
    return undefined;
  }

  // A response object's data with its `_meta`, as happn-3 hands it over.
  function decode(frame) {
    var meta = frame._meta;
    if (!('data' in frame)) return frame; // noDataResponse: {_meta}
    var data = frame.data;
    if (data === null || data === undefined) return null;
    if (Array.isArray(data)) {
      data = data.slice();
      data._meta = meta;
      return data;
    }
    if (typeof data === 'object') {
      var decoded = Object.assign({}, data);
      decoded._meta = meta;
      return decoded;
    }
    return data;
  }

  function copy(value) {
    return value === undefined ? value : JSON.parse(JSON.stringify(value));
  }

  // A glob with `*` over any characters (offPath), as a RegExp.
  function glob(pattern) {
    var escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
    return new RegExp('^' + escaped + '$');
  }

  function readCookie(name) {
    if (!browser) return null;
    var found = null;
    document.cookie.split(';').forEach(function (pair) {
      var at = pair.indexOf('=');
      if (at > 0 && pair.slice(0, at).trim() === name) found = decodeURIComponent(pair.slice(at + 1).trim());
    });
    return found;
  }

  function Client(options) {
    options = options || {};
    var reconnect = options.reconnect === false
      ? false
      : Object.assign({}, DEFAULTS.reconnect, options.reconnect || {});
    this.options = Object.assign({}, DEFAULTS, options, { reconnect: reconnect });
    this.url = wsUrl(options.url);
    this.status = 'connecting';
    this.session = null;
    this.serverInfo = null;
    this._WebSocket = options.WebSocket || root.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw clientError('ConfigError', 'EINVAL', 'no WebSocket class: pass options.WebSocket');
    }
    this._socket = null; // the current WebSocket (tests close it to force a reconnection)
    this._generation = 0; // bumped per socket; events of older sockets are ignored
    this._eventId = 0;
    this._pending = {}; // eventId -> request waiting for its answer
    this._queue = []; // requests made while reconnecting, sent once logged in again
    this._acks = {}; // '<sessionId>-<eventId>' -> onPublished handler
    this._channels = {}; // channel -> [listener]
    this._listenerId = 0;
    this._eventHandlers = {};
    this._attempt = 0;
    this._attemptActive = false; // a reconnection attempt is logging in / resubscribing
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._heartbeats = 0; // server pings answered (tests read it)
    this._closedByServer = false;
    this._onOnline = this._reconnectNow.bind(this);
  }

  // ---- connection ---------------------------------------------------------------------

  // Opens a socket and logs in on it; resolves with the session.
  Client.prototype._connect = function (timeout) {
    var self = this;
    var generation = ++this._generation;
    return new Promise(function (resolve, reject) {
      var socket;
      var done = false;
      var timer = setTimeout(function () {
        fail(clientError('TimeoutError', 'ETIMEDOUT', 'no connection to ' + self.url + ' within ' + timeout + ' ms'));
      }, timeout);
      function fail(error) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (socket && generation === self._generation) {
          self._detach();
          try { socket.close(); } catch (e) { /* already closed */ }
        }
        reject(error);
      }
      try {
        socket = new self._WebSocket(self.url);
      } catch (e) {
        return fail(e);
      }
      self._socket = socket;
      socket.binaryType = 'arraybuffer';
      socket.onmessage = function (message) {
        if (generation === self._generation) self._receive(message.data);
      };
      socket.onclose = function (event) {
        if (generation !== self._generation) return;
        if (!done) {
          fail(clientError('ConnectionError', 'ECONNRESET', 'connection to ' + self.url + ' closed during login (code ' + (event && event.code) + ')'));
          return;
        }
        self._dropped();
      };
      socket.onerror = function () {
        if (!done && generation === self._generation) fail(clientError('ConnectionError', 'ECONNREFUSED', 'cannot connect to ' + self.url));
      };
      socket.onopen = function () {
        if (generation !== self._generation) return;
        self._login()
          .then(function (session) {
            if (done) return;
            done = true;
            clearTimeout(timer);
            resolve(session);
          })
          .catch(fail);
      };
    });
  };

  // configure-session, describe, login (reference/happn-3-wire.md §2).
  Client.prototype._login = function () {
    var self = this;
    var o = this.options;
    return this._request({ action: 'configure-session', data: { protocol: PROTOCOL, version: VERSION, browser: browser } }, true)
      .then(function () { return self._request({ action: 'describe' }, true); })
      .then(function (info) {
        self.serverInfo = info;
        var data = {
          info: Object.assign({ _browser: browser, _local: false }, o.info || {}),
          protocol: PROTOCOL,
        };
        if (o.username) data.username = o.username;
        if (o.password) data.password = o.password;
        if (o.token) data.token = o.token;
        if (info && info.secure && o.useCookie && !data.token) {
          data.token = readCookie((info && info.cookieName) || 'happn_token');
          data.useCookie = true;
        }
        return self._request({ action: 'login', data: data }, true);
      })
      .then(function (session) {
        self.session = session;
        self._writeCookie(session);
        return session;
      });
  };

  Client.prototype._writeCookie = function (session) {
    if (!browser || !session || !session.token) return;
    var secure = root.location && root.location.protocol === 'https:';
    var name = session.cookieName || 'happn_token';
    if (secure && session.httpsCookie) name += '_https';
    var cookie = name + '=' + encodeURIComponent(session.token) + '; path=/';
    if (session.cookieDomain) cookie += '; domain=' + session.cookieDomain;
    if (secure) cookie += '; Secure';
    document.cookie = cookie;
    this._cookieName = name;
  };

  // Forgets the current socket's handlers, so its late events change nothing.
  Client.prototype._detach = function () {
    this._generation++;
    clearTimeout(this._pingTimer);
    this._pingTimer = null;
    var socket = this._socket;
    if (socket) socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    this._socket = null;
    return socket;
  };

  // Fails every request sent on the lost socket: whether it was carried out is unknown.
  Client.prototype._failPending = function (error) {
    var pending = this._pending;
    this._pending = {};
    Object.keys(pending).forEach(function (id) { pending[id].fail(error); });
  };

  // The socket closed without disconnect(): reconnect unless told not to.
  Client.prototype._dropped = function () {
    this._detach();
    this._failPending(clientError('ConnectionError', 'ECONNRESET', 'connection lost before the answer came'));
    this._emit('connection-ended', this.session && this.session.id);
    // During a reconnection attempt, the attempt's own failure schedules the next one.
    if (this.status === 'disconnected' || this._attemptActive) return;
    if (!this.options.reconnect || this._closedByServer) {
      this._stop(clientError('ConnectionError', 'ENOTCONN', 'connection closed by the server'));
      return;
    }
    this.status = 'reconnecting';
    this._schedule();
  };

  Client.prototype._schedule = function () {
    var r = this.options.reconnect;
    if (this._attempt >= r.retries) {
      this._emit('reconnect-timeout', { attempts: this._attempt });
      this._stop(clientError('ConnectionError', 'ENOTCONN', 'gave up reconnecting after ' + this._attempt + ' attempts'));
      return;
    }
    var attempt = ++this._attempt;
    var delay = Math.min(r.max, r.min * Math.pow(2, attempt - 1));
    delay = Math.max(r.min, Math.round(delay * (0.75 + Math.random() * 0.25)));
    if (browser && root.addEventListener) root.addEventListener('online', this._onOnline);
    this._reconnectTimer = setTimeout(this._reconnect.bind(this), delay);
    this._emit('reconnect-scheduled', { attempt: attempt, delay: delay });
  };

  Client.prototype._reconnectNow = function () {
    if (this.status !== 'reconnecting' || !this._reconnectTimer) return;
    clearTimeout(this._reconnectTimer);
    this._reconnect();
  };

  Client.prototype._reconnect = function () {
    var self = this;
    this._reconnectTimer = null;
    if (browser && root.removeEventListener) root.removeEventListener('online', this._onOnline);
    if (this.status !== 'reconnecting') return;
    var attempt = this._attempt;
    this._attemptActive = true;
    this._connect(this.options.connectTimeout)
      .then(function () { return self._resubscribe(); })
      .then(function () {
        self._attemptActive = false;
        if (self.status !== 'reconnecting') return;
        self.status = 'active';
        self._attempt = 0;
        self._flushQueue();
        self._emit('reconnect-successful', { attempt: attempt });
      })
      .catch(function (error) {
        self._attemptActive = false;
        if (self.status !== 'reconnecting') return;
        self._emit('reconnect-error', { attempt: attempt, error: error });
        var socket = self._detach();
        if (socket) try { socket.close(); } catch (e) { /* already closed */ }
        self._failPending(error);
        self._schedule();
      });
  };

  // Subscribes every live listener again on the new session (one subscription each).
  Client.prototype._resubscribe = function () {
    var self = this;
    var listeners = [];
    Object.keys(this._channels).forEach(function (channel) {
      self._channels[channel].forEach(function (listener) {
        if (listener.ref !== null) listeners.push(listener);
      });
    });
    return Promise.all(listeners.map(function (listener) {
      var options = Object.assign({}, listener.options);
      delete options.initialEmit;
      delete options.initialCallback;
      return self._request({ action: 'on', path: listener.channel, options: options }, true)
        .then(function (answer) { listener.ref = answer.id; })
        .catch(function (error) {
          // No longer allowed: the listener is dropped; anything else fails the attempt.
          if (error.code === 401 || error.code === 403) return self._forget(listener);
          throw error;
        });
    }));
  };

  Client.prototype._flushQueue = function () {
    var queue = this._queue;
    this._queue = [];
    var self = this;
    queue.forEach(function (request) {
      if (!request.settled) self._transmit(request);
    });
  };

  // Ends the client: no more reconnecting, every waiting request fails with `error`.
  Client.prototype._stop = function (error) {
    this.status = 'disconnected';
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (browser && root.removeEventListener) root.removeEventListener('online', this._onOnline);
    var socket = this._detach();
    if (socket) try { socket.close(1000); } catch (e) { /* already closed */ }
    this._failPending(error);
    var queue = this._queue;
    this._queue = [];
    queue.forEach(function (request) { request.fail(error); });
    var acks = this._acks;
    this._acks = {};
    Object.keys(acks).forEach(function (id) { acks[id].handle(error); });
  };

  // ---- frames -------------------------------------------------------------------------

  Client.prototype._receive = function (raw) {
    if (typeof raw !== 'string') {
      raw = typeof TextDecoder !== 'undefined' && raw instanceof ArrayBuffer ? new TextDecoder().decode(raw) : String(raw);
    }
    if (this._pingTimer) this._armPing();
    var frame;
    try {
      frame = JSON.parse(raw);
    } catch (e) {
      frame = raw; // a heartbeat written without JSON quotes
    }
    if (typeof frame === 'string') return this._heartbeat(frame);
    if (Array.isArray(frame)) {
      var meta = frame.pop();
      frame._meta = meta;
      return this._answer(meta, frame);
    }
    if (!frame || typeof frame !== 'object') return;
    var type = frame._meta && frame._meta.type;
    if (type === 'data') return this._event(frame);
    if (type === 'system') return this._system(frame);
    if (type === 'ack' || frame.action === 'publication-ack') return this._publicationAck(frame);
    if (frame._meta) this._answer(frame._meta, frame);
  };

  Client.prototype._heartbeat = function (text) {
    if (text.indexOf('primus::ping::') === 0) {
      this._armPing();
      if (this._write(JSON.stringify('primus::pong::' + text.slice('primus::ping::'.length)))) this._heartbeats++;
    } else if (text === 'primus::server::close') {
      this._closedByServer = true;
    }
  };

  // Restarts the watchdog that replaces a socket gone silent (armed by the first ping).
  Client.prototype._armPing = function () {
    var self = this;
    var timeout = this.options.pingTimeout;
    if (!timeout) return;
    clearTimeout(this._pingTimer);
    var socket = this._socket;
    this._pingTimer = setTimeout(function () {
      if (socket && socket === self._socket) {
        var generation = self._generation;
        try { socket.close(4000, 'heartbeat timeout'); } catch (e) { /* already closed */ }
        // A browser may take long to report the close of a dead socket: do not wait.
        if (generation === self._generation) self._dropped();
      }
    }, timeout);
  };

  Client.prototype._answer = function (meta, frame) {
    var request = meta && this._pending[meta.eventId];
    if (!request) return;
    delete this._pending[meta.eventId];
    if (meta.status === 'error') return request.fail(serverError(meta));
    request.succeed(Array.isArray(frame) ? frame : decode(frame));
  };

  Client.prototype._system = function (frame) {
    if (frame.eventKey === 'server-side-disconnect') {
      this._emit('session-ended', frame.data || {});
    } else {
      this._emit(frame.eventKey, frame.data);
    }
  };

  Client.prototype._publicationAck = function (frame) {
    var ack = this._acks[frame.id];
    if (!ack) return;
    if (frame.status === 'error') ack.handle(clientError('PublicationError', 500, String(frame.error)), frame.result);
    else ack.handle(null, frame.result);
  };

  Client.prototype._event = function (frame) {
    var self = this;
    var meta = frame._meta;
    if (meta.consistency === 3 && meta.publicationId) {
      // ACKNOWLEDGED: the writer waits for every subscriber's ack.
      this._request({ action: 'ack', data: meta.publicationId }, false)
        .then(function () { meta.acknowledged = true; }, function (error) {
          meta.acknowledged = false;
          meta.acknowledgedError = error;
        })
        .then(function () { self._dispatch(frame.data, meta); });
      return;
    }
    this._dispatch(frame.data, meta);
  };

  Client.prototype._dispatch = function (data, meta) {
    var self = this;
    var listeners = this._channels[meta.channel];
    if (!listeners) return;
    var several = listeners.length > 1;
    listeners.slice().forEach(function (listener) {
      if (listener.variableDepth && meta.depth !== undefined && listener.depth < meta.depth) return;
      if (listener.count > 0) {
        listener.runs++;
        if (listener.runs > listener.count) return;
        if (listener.runs === listener.count) {
          self._removeListener(listener).catch(function (error) { self._emit('error', error); });
        }
      }
      self._call(listener.handler, several ? copy(data) : data, meta);
    });
  };

  // Runs a user handler; what it throws is reported, not allowed to stop the others.
  Client.prototype._call = function (handler) {
    var args = Array.prototype.slice.call(arguments, 1);
    try {
      handler.apply(this, args);
    } catch (error) {
      this._emit('error', error);
      setTimeout(function () { throw error; }, 0);
    }
  };

  Client.prototype._write = function (text) {
    var socket = this._socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(text);
    return true;
  };

  // ---- requests -----------------------------------------------------------------------

  // Sends {action, eventId, path?, data?, options?, sessionId?} and resolves with the
  // decoded answer. `handshake` requests go out on the socket being logged in on; others
  // wait while the client reconnects.
  Client.prototype._request = function (frame, handshake, beforeSend) {
    var self = this;
    var options = frame.options;
    var timeout = (options && options.timeout) || this.options.callTimeout;
    return new Promise(function (resolve, reject) {
      var request = { frame: frame, settled: false, handshake: handshake, beforeSend: beforeSend };
      var what = frame.action + (frame.path !== undefined ? ' ' + frame.path : '');
      request.timer = setTimeout(function () {
        request.fail(clientError('TimeoutError', 'ETIMEDOUT', 'pathmq request timed out after ' + timeout + ' ms: ' + what));
      }, timeout);
      request.succeed = function (result) {
        if (request.settled) return;
        request.settled = true;
        clearTimeout(request.timer);
        resolve(result);
      };
      request.fail = function (error) {
        if (request.settled) return;
        request.settled = true;
        clearTimeout(request.timer);
        if (request.eventId !== undefined && self._pending[request.eventId] === request) delete self._pending[request.eventId];
        // One connection error fails many requests: each gets its own, naming it.
        if (error.code === 'ECONNRESET' && error.message.indexOf(what) < 0) {
          error = clientError(error.name, error.code, error.message + ' (' + what + ')');
        }
        reject(error);
      };
      if (self.status === 'disconnected') {
        return request.fail(clientError('NotConnected', 'ENOTCONN', 'pathmq client is disconnected'));
      }
      if (handshake || self.status === 'active') self._transmit(request);
      else self._queue.push(request);
    });
  };

  Client.prototype._transmit = function (request) {
    var frame = request.frame;
    frame.eventId = ++this._eventId;
    request.eventId = frame.eventId;
    if (this.session && this.session.id) frame.sessionId = this.session.id;
    if (request.beforeSend) request.beforeSend(frame);
    this._pending[frame.eventId] = request;
    if (this._write(JSON.stringify(frame))) return;
    delete this._pending[frame.eventId];
    if (!request.handshake && this.options.reconnect) {
      // The socket is closing: the request was not sent, so it goes out after the
      // reconnection instead.
      this._queue.push(request);
    } else {
      request.fail(clientError('ConnectionError', 'ECONNRESET', 'connection lost before the request was sent'));
    }
  };

  // A data request: {action, path, data?, options?}, options without client-only keys.
  Client.prototype._data = function (action, path, data, options) {
    if (typeof path !== 'string' || path === '') {
      return Promise.reject(clientError('ArgumentError', 'EINVAL', action + ': the path must be a non-empty string, got ' + JSON.stringify(path)));
    }
    var frame = { action: action, path: path };
    if (data !== undefined) frame.data = data;
    var beforeSend;
    if (options && typeof options === 'object') {
      frame.options = {};
      Object.keys(options).forEach(function (key) {
        if (typeof options[key] !== 'function') frame.options[key] = options[key];
      });
      if (typeof options.onPublished === 'function' && (options.consistency === 1 || options.consistency === 3)) {
        beforeSend = this._watchPublication(options.onPublished, options.onPublishedTimeout || 60000);
      }
    }
    return this._request(frame, false, beforeSend);
  };

  // Publication results (consistency DEFERRED and ACKNOWLEDGED) come in a later frame
  // with the id '<sessionId>-<eventId>'. Returns the hook that files the watcher under
  // that id when the request is sent.
  Client.prototype._watchPublication = function (onPublished, timeout) {
    var self = this;
    var id = null;
    var ack = {
      done: false,
      handle: function (error, results) {
        if (ack.done) return;
        ack.done = true;
        clearTimeout(ack.timer);
        if (id && self._acks[id] === ack) delete self._acks[id];
        self._call(onPublished, error, results);
      },
    };
    ack.timer = setTimeout(function () {
      ack.handle(clientError('TimeoutError', 'ETIMEDOUT', 'no publication results within ' + timeout + ' ms'));
    }, timeout);
    return function (frame) {
      if (ack.done) return;
      if (id) delete self._acks[id];
      id = (self.session && self.session.id) + '-' + frame.eventId;
      self._acks[id] = ack;
    };
  };

  // ---- public API: data ---------------------------------------------------------------

  Client.prototype.set = function (path, data, options) {
    var a = splitCallback(arguments);
    path = a.args[0];
    data = a.args[1];
    options = Object.assign({}, a.args[2] || {});
    if (data === null) options.nullValue = true;
    return settle(this._data('set', path, data === undefined ? null : data, options), a.callback);
  };

  Client.prototype.publish = function (path, data, options) {
    var a = splitCallback(arguments);
    options = Object.assign({}, a.args[2] || {}, { noStore: true, noDataResponse: true });
    if (a.args[1] === null) options.nullValue = true;
    return settle(this._data('set', a.args[0], a.args[1] === undefined ? null : a.args[1], options), a.callback);
  };

  Client.prototype.setSibling = function (path, data, options) {
    var a = splitCallback(arguments);
    // `set_type` is what happn clients have sent; `setSibling` is pathmq's name for it.
    options = Object.assign({}, a.args[2] || {}, { set_type: 'sibling', setSibling: true });
    return settle(this._data('set', a.args[0], a.args[1] === undefined ? null : a.args[1], options), a.callback);
  };

  // increment(path, gauge?, by?, options?): the happn-3 frame is a set whose data is the
  // gauge name and whose options.increment is the amount.
  Client.prototype.increment = function (path, gauge, by, options) {
    var a = splitCallback(arguments);
    path = a.args[0];
    gauge = a.args[1];
    by = a.args[2];
    options = a.args[3];
    if (typeof gauge === 'number') {
      options = by;
      by = gauge;
      gauge = 'counter';
    }
    if (gauge === undefined || gauge === null) gauge = 'counter';
    if (by === undefined || by === null) by = 1;
    if (typeof by !== 'number' || isNaN(by)) {
      return settle(Promise.reject(clientError('ArgumentError', 'EINVAL', 'increment must be a number, got ' + JSON.stringify(by))), a.callback);
    }
    options = Object.assign({}, options || {}, { increment: by });
    return settle(this._data('set', path, gauge, options), a.callback);
  };

  Client.prototype.get = function (path, options) {
    var a = splitCallback(arguments);
    return settle(this._data('get', a.args[0], null, a.args[1] || undefined), a.callback);
  };

  Client.prototype.getPaths = function (path, options) {
    var a = splitCallback(arguments);
    options = Object.assign({}, a.args[1] || {});
    options.options = Object.assign({}, options.options || {}, { path_only: true });
    return settle(this._data('get', a.args[0], null, options), a.callback);
  };

  Client.prototype.count = function (path, options) {
    var a = splitCallback(arguments);
    return settle(this._data('count', a.args[0], null, a.args[1] || undefined), a.callback);
  };

  Client.prototype.remove = function (path, options) {
    var a = splitCallback(arguments);
    return settle(this._data('remove', a.args[0], null, a.args[1] || undefined), a.callback);
  };

  // ---- public API: events -------------------------------------------------------------

  // on(path, options?, handler, callback?): the handler is the first function, the
  // callback the second.
  Client.prototype.on = function (path, options, handler, callback) {
    var args = Array.prototype.slice.call(arguments);
    path = args[0];
    if (typeof args[1] === 'function') {
      options = {};
      handler = args[1];
      callback = args[2];
    } else {
      options = args[1] || {};
      handler = args[2];
      callback = args[3];
    }
    if (typeof callback !== 'function') callback = null;
    var initialCallback = !!options.initialCallback;
    return settle(this._on(path, options, handler), callback, initialCallback);
  };

  Client.prototype.once = function (path, options, handler, callback) {
    var args = Array.prototype.slice.call(arguments);
    if (typeof args[1] === 'function') args.splice(1, 0, {});
    args[1] = Object.assign({}, args[1] || {}, { count: 1 });
    return this.on.apply(this, args);
  };

  Client.prototype.onAll = function (handler, callback) {
    return this.on('*', {}, handler, callback);
  };

  Client.prototype._on = function (path, options, handler) {
    var self = this;
    if (typeof path !== 'string' || path === '') {
      return Promise.reject(clientError('ArgumentError', 'EINVAL', 'on: the path must be a non-empty string, got ' + JSON.stringify(path)));
    }
    if (typeof handler !== 'function') {
      return Promise.reject(clientError('ArgumentError', 'EINVAL', 'on: the handler must be a function'));
    }
    var sent = {};
    Object.keys(options).forEach(function (key) {
      if (typeof options[key] !== 'function' && key !== 'timeout') sent[key] = options[key];
    });
    var eventType = sent.event_type;
    if (!eventType || eventType === '*') eventType = 'all';
    sent.event_type = String(eventType).toLowerCase();
    var variableDepth = path === '**' || path.slice(-3) === '/**';
    if (variableDepth && !sent.depth) sent.depth = this.options.defaultVariableDepth;
    var channel = '/' + sent.event_type.toUpperCase() + '@' + path;
    var listener = {
      id: this._listenerId++,
      channel: channel,
      handler: handler,
      options: sent,
      count: sent.count > 0 ? sent.count : 0,
      runs: 0,
      depth: sent.depth,
      variableDepth: variableDepth,
      ref: null, // the server's subscription id, once it answered
      removed: false,
    };
    (this._channels[channel] = this._channels[channel] || []).push(listener);
    var frame = { action: 'on', path: channel, options: sent };
    if (options.timeout) frame.options = Object.assign({ timeout: options.timeout }, sent);
    return this._request(frame, false).then(
      function (answer) {
        var initial = Array.isArray(answer);
        listener.ref = initial ? answer._meta && answer._meta.referenceId : answer.id;
        if (listener.removed) {
          // off() came before the answer: undo on the server too.
          self._remoteOff(listener).catch(function () {});
          return listener.id;
        }
        if (initial && sent.initialEmit) {
          answer.forEach(function (item) { self._call(handler, item); });
        }
        if (initial && sent.initialCallback) {
          var items = answer.slice();
          return [listener.id, items];
        }
        return listener.id;
      },
      function (error) {
        self._forget(listener);
        throw error;
      }
    );
  };

  // Removes a listener locally (no more events reach it).
  Client.prototype._forget = function (listener) {
    listener.removed = true;
    var listeners = this._channels[listener.channel];
    if (!listeners) return;
    var at = listeners.indexOf(listener);
    if (at >= 0) listeners.splice(at, 1);
    if (listeners.length === 0) delete this._channels[listener.channel];
  };

  Client.prototype._remoteOff = function (listener) {
    if (listener.ref === null || listener.ref === undefined || this.status === 'disconnected') {
      return Promise.resolve();
    }
    return this._request({ action: 'off', path: listener.channel, options: { referenceId: listener.ref } }, false);
  };

  Client.prototype._removeListener = function (listener) {
    if (listener.removed) return Promise.resolve();
    this._forget(listener);
    return this._remoteOff(listener).then(function () {});
  };

  Client.prototype._listeners = function () {
    var self = this;
    var all = [];
    Object.keys(this._channels).forEach(function (channel) {
      all = all.concat(self._channels[channel]);
    });
    return all;
  };

  Client.prototype.off = function (handle, callback) {
    var a = splitCallback(arguments);
    handle = a.args[0];
    if (typeof handle !== 'number') {
      return settle(Promise.reject(clientError('ArgumentError', 'EINVAL', 'off: the handle must be the number on() gave, got ' + JSON.stringify(handle))), a.callback);
    }
    var listener = this._listeners().filter(function (l) { return l.id === handle; })[0];
    return settle(listener ? this._removeListener(listener) : Promise.resolve(), a.callback);
  };

  // offPath(path): removes the listeners whose path matches `path` (`*` any characters).
  Client.prototype.offPath = function (path, callback) {
    var a = splitCallback(arguments);
    var pattern = glob(typeof a.args[0] === 'string' ? a.args[0] : '*');
    var self = this;
    var matching = this._listeners().filter(function (l) {
      return pattern.test(l.channel.slice(l.channel.indexOf('@') + 1));
    });
    return settle(Promise.all(matching.map(function (l) { return self._removeListener(l); })).then(function () {}), a.callback);
  };

  Client.prototype.offAll = function (callback) {
    var a = splitCallback(arguments);
    var self = this;
    this._listeners().forEach(function (l) { self._forget(l); });
    var done = this.status === 'disconnected'
      ? Promise.resolve()
      : this._request({ action: 'off', path: '*', options: { referenceId: 0 } }, false).then(function () {});
    return settle(done, a.callback);
  };

  // ---- public API: connection ---------------------------------------------------------

  Client.prototype.onEvent = function (name, handler) {
    if (!name) throw clientError('ArgumentError', 'EINVAL', 'event name cannot be empty');
    if (typeof handler !== 'function') throw clientError('ArgumentError', 'EINVAL', 'event handler must be a function');
    var handlers = (this._eventHandlers[name] = this._eventHandlers[name] || []);
    handlers.push(handler);
    return name + '|' + (handlers.length - 1);
  };

  Client.prototype.offEvent = function (id) {
    var at = String(id).lastIndexOf('|');
    var handlers = this._eventHandlers[String(id).slice(0, at)];
    if (handlers) handlers[Number(String(id).slice(at + 1))] = null;
  };

  Client.prototype._emit = function (name, data) {
    var self = this;
    (this._eventHandlers[name] || []).forEach(function (handler) {
      if (!handler) return;
      try {
        handler.call(self, data);
      } catch (error) {
        setTimeout(function () { throw error; }, 0);
      }
    });
  };

  Client.prototype.disconnect = function (options, callback) {
    var a = splitCallback(arguments);
    options = a.args[0] || {};
    if (options.deleteCookie && browser && this._cookieName) {
      document.cookie = this._cookieName + '=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT';
    }
    this._stop(clientError('NotConnected', 'ENOTCONN', 'pathmq client is disconnected'));
    this._channels = {};
    return settle(Promise.resolve(), a.callback);
  };

  // ---- create -------------------------------------------------------------------------

  function create(options, callback) {
    var a = splitCallback(arguments);
    var promise = new Promise(function (resolve) {
      resolve(new Client(a.args[0] || {}));
    }).then(function (client) {
      return client._connect(client.options.connectTimeout).then(
        function () {
          client.status = 'active';
          return client;
        },
        function (error) {
          client._stop(error);
          throw error;
        }
      );
    });
    return settle(promise, a.callback);
  }

  return { create: create, Client: Client, version: VERSION };
});
