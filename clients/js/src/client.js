// connect(): the chatstream client (issue 24). On top of the socket layer
// (protocol.js) it keeps one state per message (reducer.js) and follows every
// message it started or subscribed to until it ends: after a reconnect it
// subscribes again from the text and reasoning it already holds, so nothing
// is lost or repeated. Requests are promises; streams and watches are async
// iterators. No DOM, no dependencies: browsers and Node 20 (pass `ws`).
import { ChatClient, ProtocolError, buildWsUrl } from './protocol.js';
import { splitsSurrogatePair } from './offsets.js';
import { applyEvent, createMessage, isTerminal, messageFromRow } from './reducer.js';

/** Opens a client (it connects at once and reconnects until close()). */
export function connect(options) {
  return new ChatstreamClient(options).open();
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a caller that never awaits it must not crash Node
  return { promise, resolve, reject };
}

/** Length of the common prefix of two strings, never ending inside a surrogate pair. */
function commonPrefix(a, b) {
  let n = 0;
  const max = Math.min(a.length, b.length);
  while (n < max && a.charCodeAt(n) === b.charCodeAt(n)) n++;
  if (splitsSurrogatePair(a, n)) n--;
  return n;
}

export class ChatstreamClient {
  #base;
  #token;
  #user;
  #live = new Map(); // messageId -> tracker of a message followed until it ends
  #watches = new Set();
  #listeners = new Map(); // type -> Set<fn>
  #epoch = 0; // counts opened sockets: what was sent on which one

  /**
   * @param {object} o
   * @param {string} o.url        ws(s)://HOST:PORT/ws
   * @param {string|(()=>string)} [o.token]  JWT (a function is asked on every reconnect, for a fresh token)
   * @param {string} [o.user]     dev-mode user name (server without --jwt-secret-env)
   * @param {Function} [o.WebSocket]  WebSocket class; default globalThis.WebSocket (Node 20: pass the `ws` package)
   */
  constructor({ url, token, user, WebSocket, heartbeatMs = 15000, requestTimeoutMs = 30000, resyncMs = 1000, timers, rng } = {}) {
    if (!url) throw new TypeError('connect: `url` is required (ws://HOST:PORT/ws)');
    const Impl = WebSocket ?? globalThis.WebSocket;
    if (!Impl) throw new TypeError('connect: no global WebSocket here; pass one as `WebSocket` (e.g. the ws package)');
    this.#base = url;
    this.#token = token;
    this.#user = user;
    this.resyncMs = resyncMs;
    /** Every message state this client knows, by id (the UI shape of reducer.js). */
    this.messages = new Map();
    this.socket = new ChatClient({
      url: () => this.url,
      WebSocketImpl: Impl,
      onEvent: (ev, frame) => this.#onEvent(ev, frame),
      onStatus: (s) => this.#emit('status', s),
      onOpen: () => this.#onOpen(),
      timers,
      rng,
      heartbeatMs,
      requestTimeoutMs,
    });
    this.timers = this.socket.timers;
  }

  /** The socket URL with its credentials (`?token=` or `?user=`). */
  get url() {
    const token = typeof this.#token === 'function' ? this.#token() : this.#token;
    return buildWsUrl({ base: this.#base, user: this.#user, token });
  }

  /** idle | connecting | open | waiting (to reconnect) | closed */
  get state() {
    return this.socket.state;
  }

  get isOpen() {
    return this.socket.isOpen;
  }

  open() {
    this.socket.connect();
    return this;
  }

  /** Closes for good: no reconnect; open streams fail with `closed`. */
  close() {
    this.socket.close();
    const err = new ProtocolError('closed', 'the client was closed');
    for (const t of this.#live.values()) for (const s of t.streams) s._fail(err);
    this.#live.clear();
    for (const w of this.#watches) w._end();
    this.#watches.clear();
  }

  /** Skips the backoff wait (e.g. the browser came back online). */
  reconnectNow() {
    this.socket.reconnectNow();
  }

  /**
   * Listens to `status` (connection state), `open` (every (re)connect, after
   * the live messages were subscribed again), `message` (msg, {before,
   * event, effect}: a message state changed), `event` (every server event)
   * and `error` (ProtocolError, frame: errors no promise was waiting for).
   * Returns the function that removes the listener.
   */
  on(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
    return () => this.#listeners.get(type)?.delete(fn);
  }

  #emit(type, ...args) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's bug must not stop the stream; it still surfaces.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** Resolves once the socket is open (rejects after requestTimeoutMs or when closed). */
  ready() {
    if (this.isOpen) return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new ProtocolError('closed', 'the client was closed'));
    return new Promise((resolve, reject) => {
      const off = this.on('open', () => {
        off();
        this.timers.clearTimeout(timer);
        resolve();
      });
      const timer = this.timers.setTimeout(() => {
        off();
        reject(new ProtocolError('timeout', `not connected within ${this.socket.requestTimeoutMs} ms`));
      }, this.socket.requestTimeoutMs);
    });
  }

  /** One request, one reply: resolves with `result.data` (or the ack); waits for the socket first. */
  async request(frame, options) {
    if (!this.isOpen) await this.ready();
    return this.socket.request(frame, options);
  }

  query(name, args) {
    return this.request(args === undefined ? { type: 'query', name } : { type: 'query', name, args });
  }

  mutate(name, args) {
    return this.request(args === undefined ? { type: 'mutate', name } : { type: 'mutate', name, args });
  }

  /**
   * Starts an answer: `generate` (docs/design.md §6). The stream's `ack` resolves
   * with `{conversationId, userMessageId, messageId}` (or rejects with the
   * server's refusal); iterate it for the events, or await `done`.
   */
  generate({ content, conversationId, model, attachments } = {}) {
    const frame = { type: 'generate', content };
    if (conversationId) frame.conversationId = conversationId;
    if (model) frame.model = model;
    if (attachments?.length) frame.attachments = attachments;
    return this.#startStream(frame, (ev) => (ev.type === 'ack' ? ev : null));
  }

  /** `mutate regenerate`: a new answer replaces `messageId` and the messages after it; `ack` is the mutation's result. */
  regenerate(messageId) {
    return this.#startStream({ type: 'mutate', name: 'regenerate', args: { messageId } }, (ev) => (ev.type === 'result' ? ev.data : null));
  }

  /** `mutate retry`: like regenerate, for an answer that ended error, stopped or interrupted. */
  retry(messageId) {
    return this.#startStream({ type: 'mutate', name: 'retry', args: { messageId } }, (ev) => (ev.type === 'result' ? ev.data : null));
  }

  #startStream(frame, started) {
    const stream = new MessageStream(this);
    this.request(frame, {
      // Synchronous: the stream's first events may be dispatched in the same tick.
      onReply: (ev) => {
        const info = started(ev);
        if (!info?.messageId) return;
        for (const id of info.removedMessageIds ?? []) this.forget(id);
        stream._acked(info);
        // The requester is subscribed by the server: follow it from here.
        this.#attach(stream, info.messageId, { conversationId: info.conversationId, subscribed: true });
      },
    }).catch((err) => stream._fail(err));
    return stream;
  }

  /**
   * Follows a message (by id, or a message state the caller already holds,
   * e.g. from history or a saved copy): subscribes from the text and
   * reasoning already held, and again after every reconnect, until it ends.
   */
  subscribe(target) {
    const id = typeof target === 'string' ? target : target?.id;
    if (!id) throw new TypeError('subscribe: a message id or a message state with an id');
    if (!this.messages.has(id) && typeof target === 'object') this.messages.set(id, createMessage(target));
    const stream = new MessageStream(this);
    stream._acked({ messageId: id });
    const t = this.#attach(stream, id, {});
    if (t && !t.subscribed && this.isOpen) this.#sendSubscribe(t);
    return stream;
  }

  /** True while the client follows `messageId` (it has not ended). */
  isFollowing(messageId) {
    return this.#live.has(messageId);
  }

  /** Stops following a message and drops its state (e.g. it was deleted). */
  forget(messageId) {
    const t = this.#live.get(messageId);
    if (t) {
      this.timers.clearTimeout(t.resyncTimer);
      for (const s of t.streams) s._fail(new ProtocolError('not_found', 'the message was removed'));
      this.#live.delete(messageId);
    }
    this.messages.delete(messageId);
  }

  /** Applies `fn(state)` to a message state held by the client and notifies `message` listeners. */
  update(messageId, fn) {
    const before = this.messages.get(messageId);
    const after = fn(before);
    if (!after || after === before) return before;
    this.messages.set(messageId, after);
    this.#emit('message', after, { before, event: null, effect: null });
    return after;
  }

  /**
   * Stops a generation (`cancel`): resolves with the message's final state
   * once its `finish` arrived (normally `stopped`; when the answer had
   * already ended, its real final state). Rejects with the server's error
   * (`not_found`).
   */
  cancel(messageId) {
    const m = this.messages.get(messageId);
    if (m && isTerminal(m.status)) return Promise.resolve(m);
    // The canceller is sent the finish: follow the message so it arrives here.
    const stream = new MessageStream(this);
    stream._acked({ messageId });
    const t = this.#attach(stream, messageId, {});
    const send = () =>
      this.socket.send({ type: 'cancel', messageId }, (err) => {
        if (err.code === 'conflict') {
          // Not generating any more: its final state comes with a subscribe.
          t.subscribed = false;
          if (this.#live.get(messageId) === t) this.#sendSubscribe(t);
        } else {
          stream._fail(new ProtocolError(err.code, err.message, err));
        }
      });
    if (this.isOpen) send();
    else this.ready().then(send, (e) => stream._fail(e));
    return stream.done;
  }

  /**
   * `watch`: every committed change to the caller's data (`changed` events,
   * docs/lifecycle.md), also sent again after each reconnect. Iterate it, or
   * pass `onChange`; `ready` resolves once the server answered.
   */
  watch({ onChange } = {}) {
    const w = new Watch(this, onChange);
    this.#watches.add(w);
    if (this.isOpen) this.#sendWatch(w);
    return w;
  }

  _unwatch(w) {
    this.#watches.delete(w);
  }

  #sendWatch(w) {
    w.epoch = this.#epoch;
    this.socket.request({ type: 'watch' }).then(
      () => w._ready(),
      (err) => err.code !== 'disconnected' && this.#emit('error', err, { type: 'watch' }),
    );
  }

  // ---------------------------------------------------------------- tracking

  #attach(stream, id, { conversationId, subscribed }) {
    let m = this.messages.get(id);
    if (!m) {
      m = createMessage({ id, conversationId, role: 'assistant' });
      this.messages.set(id, m);
    }
    stream._bind(id, m);
    if (isTerminal(m.status)) {
      stream._end(m);
      return null;
    }
    let t = this.#live.get(id);
    if (!t) {
      t = { id, streams: new Set(), subscribed: false, epoch: -1, rebases: 0, lastResync: 0, resyncTimer: 0 };
      this.#live.set(id, t);
    }
    if (subscribed) {
      t.subscribed = true;
      t.epoch = this.#epoch;
    }
    t.streams.add(stream);
    return t;
  }

  _detach(stream) {
    const t = this.#live.get(stream.messageId);
    t?.streams.delete(stream);
  }

  #sendSubscribe(t) {
    const m = this.messages.get(t.id);
    const frame = { type: 'subscribe', messageId: t.id, fromOffset: m?.text.length ?? 0 };
    // Reasoning has its own offsets (docs/design.md §9); the server replays it from 0 unless told.
    if (m?.reasoning.length) frame.fromReasoningOffset = m.reasoning.length;
    t.subscribed = this.socket.send(frame, (err, f) => this.#onSubscribeError(t, err, f));
    t.epoch = this.#epoch;
    t.lastResync = this.timers.now();
  }

  #onSubscribeError(t, err, frame) {
    if (this.#live.get(t.id) !== t) return;
    t.subscribed = false;
    if (err.code === 'bad_request' && (frame.fromOffset > 0 || frame.fromReasoningOffset > 0) && t.rebases < 2) {
      // We hold more than the server kept (it restarted after its last
      // flush, or another node lags): take its text, then subscribe from there.
      t.rebases++;
      this.#rebase(t);
      return;
    }
    if (err.code === 'not_found') return this.#lost(t, err);
    this.#emit('error', new ProtocolError(err.code, err.message, err), frame);
  }

  #lost(t, err) {
    const m = this.messages.get(t.id);
    this.#live.delete(t.id);
    this.timers.clearTimeout(t.resyncTimer);
    if (m && !isTerminal(m.status)) this.update(t.id, (x) => ({ ...x, status: 'error', error: 'message not found' }));
    const e = new ProtocolError(err.code ?? 'not_found', err.message ?? 'message not found', err);
    for (const s of t.streams) s._fail(e);
    this.#emit('error', e, { type: 'subscribe', messageId: t.id });
  }

  async #rebase(t) {
    let row;
    try {
      row = await this.socket.request({ type: 'query', name: 'getMessage', args: { messageId: t.id } });
    } catch (err) {
      if (err.code === 'not_found') return this.#lost(t, err);
      return; // disconnected: the next open subscribes again
    }
    if (this.#live.get(t.id) !== t) return;
    const server = messageFromRow(row);
    const m = this.messages.get(t.id);
    const text = commonPrefix(m.text, server.text);
    const reasoning = commonPrefix(m.reasoning, server.reasoning);
    if (text < m.text.length || reasoning < m.reasoning.length) {
      const effect = { type: 'truncate', messageId: t.id, textLength: text, reasoningLength: reasoning };
      const after = { ...m, text: m.text.slice(0, text), reasoning: m.reasoning.slice(0, reasoning), gap: null, reasoningGap: null };
      this.messages.set(t.id, after);
      for (const s of t.streams) s._effect(effect);
      this.#emit('message', after, { before: m, event: effect, effect });
    }
    this.#sendSubscribe(t);
  }

  // A delta past our end: some text never reached us; ask again from what we hold.
  #resync(t) {
    if (t.resyncTimer) return;
    const wait = t.lastResync + this.resyncMs - this.timers.now();
    const go = () => {
      t.resyncTimer = 0;
      const m = this.messages.get(t.id);
      if (this.#live.get(t.id) === t && this.isOpen && (m?.gap || m?.reasoningGap)) this.#sendSubscribe(t);
    };
    if (wait <= 0) go();
    else t.resyncTimer = this.timers.setTimeout(go, wait);
  }

  #onOpen() {
    this.#epoch++;
    for (const t of this.#live.values()) {
      t.subscribed = false;
      t.rebases = 0;
      this.#sendSubscribe(t);
    }
    for (const w of this.#watches) if (w.epoch !== this.#epoch) this.#sendWatch(w);
    this.#emit('open');
  }

  #onEvent(ev, frame) {
    if (ev.type === 'changed') {
      for (const w of this.#watches) w._push(ev);
      this.#emit('event', ev);
      return;
    }
    if (ev.type === 'error') {
      // The generation itself failed (e.g. its final commit): that ends the message.
      if (ev.messageId && ev.id == null && ev.code === 'internal' && this.messages.has(ev.messageId)) this.#apply(ev);
      this.#emit('error', new ProtocolError(ev.code ?? 'internal', ev.message ?? 'error', ev), frame);
      return;
    }
    this.#emit('event', ev);
    if (ev.messageId) this.#apply(ev);
  }

  #apply(ev) {
    const id = ev.messageId;
    const before = this.messages.get(id) ?? createMessage({ id, conversationId: ev.conversationId, role: 'assistant' });
    const { msg, effect } = applyEvent(before, ev);
    this.messages.set(id, msg);
    const t = this.#live.get(id);
    if (t && ((msg.gap && !before.gap) || (msg.reasoningGap && !before.reasoningGap))) this.#resync(t);
    if (t && effect) for (const s of t.streams) s._effect(effect);
    if (msg !== before) this.#emit('message', msg, { before, event: ev, effect });
    if (t && isTerminal(msg.status)) {
      this.#live.delete(id);
      this.timers.clearTimeout(t.resyncTimer);
      for (const s of t.streams) s._end(msg);
    }
  }
}

/**
 * One message's stream of events as a consumer should see them: each text
 * or reasoning delta once, at its offset; tool events that change a call;
 * the first `start`; the `finish`. A `truncate` event says the server kept
 * less than was shown (after a restart) and the text is now that long.
 */
export class MessageStream {
  #client;
  #queue = [];
  #waiters = [];
  #ended = false;
  #error = null;
  #started = false;
  #ack = deferred();
  #done = deferred();

  constructor(client) {
    this.#client = client;
    /** The message id (null until the server acknowledged the request). */
    this.messageId = null;
    /** The message state when the stream was bound to it (what the events start from). */
    this.initial = null;
  }

  /** The reply that started the stream (`ack`, or the regenerate/retry result). */
  get ack() {
    return this.#ack.promise;
  }

  /** The final message state once it is terminal (complete, stopped, error, interrupted). */
  get done() {
    return this.#done.promise;
  }

  /** The message's current state. */
  get message() {
    return this.messageId ? this.#client.messages.get(this.messageId) ?? null : null;
  }

  /** Stops the generation (`cancel`); resolves with the final state. */
  async cancel() {
    if (!this.messageId) await this.ack;
    return this.#client.cancel(this.messageId);
  }

  /** Stops this stream (the generation goes on; the client still follows it). */
  close() {
    this.#client._detach(this);
    this.#finish();
  }

  _bind(id, state) {
    this.messageId = id;
    this.initial = state;
  }

  _acked(info) {
    this.#ack.resolve(info);
  }

  _effect(effect) {
    if (this.#ended) return;
    if (effect.type === 'start') {
      if (this.#started) return; // a resubscribe starts again; the consumer saw it once
      this.#started = true;
    }
    this.#push({ value: effect, done: false });
  }

  _end(state) {
    this.#ack.resolve(undefined); // no-op once acked
    this.#done.resolve(state);
    this.#finish();
  }

  _fail(err) {
    if (this.#ended) return;
    this.#error = err;
    this.#ack.reject(err);
    this.#done.reject(err);
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #finish() {
    if (this.#ended) return;
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  #push(item) {
    const w = this.#waiters.shift();
    if (w) w.resolve(item);
    else this.#queue.push(item);
  }

  next() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  return() {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/** The `changed` events of a `watch`, as an async iterator (or a callback). */
export class Watch {
  #client;
  #onChange;
  #queue = [];
  #waiters = [];
  #ended = false;
  #ready = deferred();

  constructor(client, onChange) {
    this.#client = client;
    this.#onChange = onChange;
    this.epoch = -1;
  }

  /** Resolves once the server confirmed the first `watch`. */
  get ready() {
    return this.#ready.promise;
  }

  _ready() {
    this.#ready.resolve();
  }

  _push(ev) {
    if (this.#ended) return;
    if (this.#onChange) return this.#onChange(ev);
    const w = this.#waiters.shift();
    if (w) w({ value: ev, done: false });
    else this.#queue.push(ev);
  }

  _end() {
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
  }

  /** Stops delivering (the server has no unwatch; the events are dropped here). */
  close() {
    this.#client._unwatch(this);
    this._end();
  }

  next() {
    if (this.#queue.length) return Promise.resolve({ value: this.#queue.shift(), done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return() {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
