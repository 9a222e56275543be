// The socket layer of the chatstream protocol (docs/design.md §6): request/reply
// matching by id, stream events handed to the caller, reconnect with backoff
// and a heartbeat. No DOM access; the WebSocket class and the timers are
// injected so that Node tests can drive it with a fake socket. client.js
// builds message tracking and exact resume on top of it.

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with jitter in [50%, 100%]. */
export function backoffDelay(attempt, rng = Math.random, baseMs = 500, capMs = 30000) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + (rng() * ceiling) / 2);
}

/** The socket URL: `base` (default: this page's origin + /ws) with `?token=` or, in dev mode, `?user=`. */
export function buildWsUrl({ base, user, token }) {
  const url = new URL(base);
  url.searchParams.delete('user');
  url.searchParams.delete('token');
  if (token) url.searchParams.set('token', token);
  else if (user) url.searchParams.set('user', user);
  return url.toString();
}

/** The default socket base for a page at `location` (http→ws, https→wss). */
export function defaultWsBase(location) {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

/**
 * URL of an attachment's bytes (`GET /api/files/{storageId}`, issue 11), on
 * the same host as the socket. A dev-mode `?user=` is copied (it is a name,
 * not a secret); a token never is: a URL ends up in history, logs and
 * copied links, so the token goes in an Authorization header (authHeaders,
 * fetchFile) instead.
 */
export function fileUrl(wsUrl, storageId) {
  const ws = new URL(wsUrl);
  const url = new URL(`/api/files/${encodeURIComponent(storageId)}`, ws);
  url.protocol = ws.protocol === 'wss:' ? 'https:' : 'http:';
  if (ws.searchParams.has('user')) url.searchParams.set('user', ws.searchParams.get('user'));
  return url.toString();
}

/** URL of `POST /api/files` (issue 11), like fileUrl. */
export function uploadUrl(wsUrl) {
  return fileUrl(wsUrl, '').replace(/\/api\/files\/(\?|$)/, '/api/files$1');
}

/** The socket's token as HTTP headers (`{}` in dev mode). */
export function authHeaders(wsUrl) {
  const token = new URL(wsUrl).searchParams.get('token');
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** True when the socket carries a token: file bytes must then be fetched with authHeaders. */
export function needsAuthHeader(wsUrl) {
  return new URL(wsUrl).searchParams.has('token');
}

/** The bytes of an attachment as a Blob, fetched with the socket's credentials. */
export async function fetchFile(wsUrl, storageId, fetchImpl = fetch) {
  const res = await fetchImpl(fileUrl(wsUrl, storageId), { headers: authHeaders(wsUrl) });
  if (!res.ok) throw new Error(`file ${storageId}: HTTP ${res.status}`);
  return res.blob();
}

/**
 * Uploads one File/Blob as multipart/form-data; resolves with the server's
 * `{storageId, name, mimeType, size, type, metadata}` or rejects with an
 * Error whose message is the server's.
 */
export async function uploadFile(wsUrl, file, fetchImpl = fetch) {
  const form = new FormData();
  form.append('file', file, file.name);
  const res = await fetchImpl(uploadUrl(wsUrl), { method: 'POST', body: form, headers: authHeaders(wsUrl) });
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new Error(body?.message ?? `upload failed (HTTP ${res.status})`);
  return body;
}

/** An error answered by the server (`code` as in §6) or by the client (`disconnected`, `timeout`). */
export class ProtocolError extends Error {
  constructor(code, message, event = null) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.event = event;
  }
}

const defaultTimers = {
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (t) => clearTimeout(t),
  setInterval: (f, ms) => setInterval(f, ms),
  clearInterval: (t) => clearInterval(t),
  now: () => Date.now(),
};

export class ChatClient {
  /**
   * @param {object} o
   * @param {string|(()=>string)} o.url     ws URL including ?user= / ?token=; a function is called on every (re)connect (a fresh token)
   * @param {Function} [o.WebSocketImpl]    defaults to globalThis.WebSocket
   * @param {(ev:object, request:object|null)=>void} [o.onEvent]  stream events, `changed`, and errors of fire-and-forget frames
   * @param {(status:object)=>void} [o.onStatus]  connection state changes
   * @param {()=>void} [o.onOpen]          called on every (re)connect: re-list, re-subscribe
   */
  constructor({ url, WebSocketImpl, onEvent, onStatus, onOpen, timers, rng, requestTimeoutMs = 30000, heartbeatMs = 15000 }) {
    this.url = url;
    this.WebSocketImpl = WebSocketImpl ?? globalThis.WebSocket;
    this.onEvent = onEvent ?? (() => {});
    this.onStatus = onStatus ?? (() => {});
    this.onOpen = onOpen ?? (() => {});
    this.timers = { ...defaultTimers, ...timers };
    this.rng = rng ?? Math.random;
    this.requestTimeoutMs = requestTimeoutMs;
    this.heartbeatMs = heartbeatMs;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.sent = new Map(); // id -> {frame, timer}: fire-and-forget frames whose errors we route
    this.attempt = 0;
    this.everOpened = false;
    this.manualClose = false;
    this.retryTimer = null;
    this.heartbeat = null;
    this.lastSeen = 0;
    this.state = 'idle';
  }

  get isOpen() {
    return this.state === 'open';
  }

  #setStatus(state, extra = {}) {
    this.state = state;
    this.onStatus({ state, attempt: this.attempt, everOpened: this.everOpened, ...extra });
  }

  connect() {
    this.manualClose = false;
    if (this.retryTimer) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.#setStatus('connecting');
    let ws;
    try {
      ws = new this.WebSocketImpl(typeof this.url === 'function' ? this.url() : this.url);
    } catch (e) {
      this.#onClose(null, { code: 0, reason: String(e?.message ?? e) });
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.everOpened = true;
      this.lastSeen = this.timers.now();
      this.#startHeartbeat();
      this.#setStatus('open');
      this.onOpen();
    };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      this.lastSeen = this.timers.now();
      this.#onFrame(m.data);
    };
    ws.onclose = (e) => this.#onClose(ws, e);
    ws.onerror = () => {}; // always followed by close
  }

  /** Closes for good (no reconnect). */
  close() {
    this.manualClose = true;
    if (this.retryTimer) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (ws) ws.close(1000, 'bye');
    this.#onClose(ws, { code: 1000, reason: 'closed' });
  }

  /** Skips the remaining backoff wait (e.g. the browser came back online). */
  reconnectNow() {
    if (this.state === 'waiting') this.connect();
  }

  #onClose(ws, e) {
    if (ws && this.ws !== ws) return; // a socket we already gave up on
    this.ws = null;
    if (this.heartbeat) this.timers.clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const [id, p] of this.pending) {
      this.timers.clearTimeout(p.timer);
      p.reject(new ProtocolError('disconnected', 'connection lost before the server answered'));
      this.pending.delete(id);
    }
    for (const s of this.sent.values()) this.timers.clearTimeout(s.timer);
    this.sent.clear();
    if (this.manualClose) return this.#setStatus('closed', { code: e?.code });
    const delay = backoffDelay(this.attempt++, this.rng);
    this.#setStatus('waiting', { retryInMs: delay, code: e?.code, reason: e?.reason });
    this.retryTimer = this.timers.setTimeout(() => this.connect(), delay);
  }

  #startHeartbeat() {
    if (this.heartbeat) this.timers.clearInterval(this.heartbeat);
    this.heartbeat = this.timers.setInterval(() => {
      const idle = this.timers.now() - this.lastSeen;
      if (idle > 3 * this.heartbeatMs) {
        // Half-open connection: drop it and reconnect.
        const ws = this.ws;
        if (ws) ws.close(4000, 'heartbeat timeout');
        this.#onClose(ws, { code: 4000, reason: 'heartbeat timeout' });
      } else if (idle >= this.heartbeatMs) {
        this.#raw({ type: 'ping' });
      }
    }, this.heartbeatMs);
  }

  #raw(frame) {
    if (!this.ws || this.state !== 'open') return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  #onFrame(data) {
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    if (ev.type === 'pong') return;
    const id = ev.id == null ? null : String(ev.id);
    if (id && this.pending.has(id) && (ev.type === 'result' || ev.type === 'ack' || ev.type === 'error')) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      this.timers.clearTimeout(p.timer);
      // Synchronous, before the promise settles: the stream events that follow
      // an ack may be dispatched in the same tick (ws emits frames of one read
      // together), so whoever tracks the stream must know its id now.
      p.onReply?.(ev);
      if (ev.type === 'error') p.reject(new ProtocolError(ev.code ?? 'internal', ev.message ?? 'error', ev));
      else p.resolve(ev.type === 'result' ? ev.data : ev);
      return;
    }
    if (ev.type === 'error' && id && this.sent.has(id)) {
      const s = this.sent.get(id);
      this.sent.delete(id);
      this.timers.clearTimeout(s.timer);
      if (s.onError) return s.onError(ev, s.frame);
      return this.onEvent(ev, s.frame);
    }
    this.onEvent(ev, null);
  }

  /**
   * Sends a frame that gets exactly one reply (`query`, `mutate`: `result`;
   * `generate`: `ack`) and resolves with it (`result.data`, or the ack), or
   * rejects with a ProtocolError (server `error`, `disconnected`, `timeout`).
   * `onReply(ev)` sees the reply frame synchronously, before the promise settles.
   */
  request(frame, { onReply } = {}) {
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (!this.#raw({ ...frame, id })) {
        reject(new ProtocolError('disconnected', 'not connected'));
        return;
      }
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError('timeout', `no answer to ${frame.type} in ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, onReply });
    });
  }

  query(name, args) {
    return this.request(args === undefined ? { type: 'query', name } : { type: 'query', name, args });
  }

  /**
   * Sends a frame without a reply of its own (`subscribe`, `cancel`); an
   * `error` for it goes to `onError(ev, frame)` when given, else to onEvent
   * with the frame.
   */
  send(frame, onError) {
    const id = `s${this.nextId++}`;
    if (!this.#raw({ ...frame, id })) return false;
    const timer = this.timers.setTimeout(() => this.sent.delete(id), this.requestTimeoutMs);
    this.sent.set(id, { frame, timer, onError });
    return true;
  }

  subscribe(messageId, fromOffset = 0) {
    return this.send({ type: 'subscribe', messageId, fromOffset });
  }

  cancel(messageId) {
    return this.send({ type: 'cancel', messageId });
  }
}
