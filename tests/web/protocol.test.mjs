// The WebSocket client (fake socket, fake timers) and the resume store.
import test from 'node:test';
import assert from 'node:assert/strict';

import { ChatClient, ProtocolError, backoffDelay, buildWsUrl, defaultWsBase, fetchFile, fileUrl, needsAuthHeader, uploadFile, uploadUrl } from '../../clients/js/src/protocol.js';
import { InflightStore } from '../../clients/js/src/resume.js';

class FakeTimers {
  constructor() {
    this.t = 0;
    this.queue = [];
    this.seq = 0;
  }
  now = () => this.t;
  setTimeout = (f, ms) => {
    const id = ++this.seq;
    this.queue.push({ id, at: this.t + ms, f });
    return id;
  };
  clearTimeout = (id) => {
    this.queue = this.queue.filter((q) => q.id !== id);
  };
  setInterval = (f, ms) => {
    const id = ++this.seq;
    const tick = () => {
      this.queue.push({ id, at: this.t + ms, f: () => (tick(), f()) });
    };
    tick();
    return id;
  };
  clearInterval = this.clearTimeout;
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.t = next.at;
      next.f();
    }
    this.t = end;
  }
}

function fakeSocketClass() {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close(code = 1000) {
      if (this.closed) return;
      this.closed = true;
      this.onclose?.({ code });
    }
    // test helpers
    open() {
      this.onopen?.();
    }
    recv(obj) {
      this.onmessage?.({ data: JSON.stringify(obj) });
    }
    drop() {
      this.closed = true;
      this.onclose?.({ code: 1006 });
    }
  }
  return { FakeWS, sockets };
}

function setup(extra = {}) {
  const timers = new FakeTimers();
  const { FakeWS, sockets } = fakeSocketClass();
  const events = [];
  const statuses = [];
  let opens = 0;
  const client = new ChatClient({
    url: 'ws://h/ws?user=a',
    WebSocketImpl: FakeWS,
    timers,
    rng: () => 1,
    onEvent: (ev, req) => events.push([ev, req]),
    onStatus: (s) => statuses.push(s),
    onOpen: () => opens++,
    ...extra,
  });
  return { client, timers, sockets, events, statuses, opens: () => opens };
}

test('backoffDelay grows exponentially, is capped and jittered', () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(0, () => 0), 250);
  assert.equal(backoffDelay(3, () => 1), 4000);
  assert.equal(backoffDelay(30, () => 1), 30000);
  assert.equal(backoffDelay(30, () => 0), 15000);
});

test('URLs: ws base with user or token, file URL on the same host with the same credentials', () => {
  assert.equal(defaultWsBase({ protocol: 'https:', host: 'x.org' }), 'wss://x.org/ws');
  assert.equal(defaultWsBase({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/ws');
  assert.equal(buildWsUrl({ base: 'ws://h:1/ws', user: 'bob' }), 'ws://h:1/ws?user=bob');
  assert.equal(buildWsUrl({ base: 'ws://h:1/ws?user=old', user: 'bob', token: 'T.K.N' }), 'ws://h:1/ws?token=T.K.N');
  assert.equal(buildWsUrl({ base: 'ws://h:1/ws' }), 'ws://h:1/ws');
  // A token never goes into a link (history, logs): it is sent as a header.
  assert.equal(fileUrl('wss://h/ws?token=abc', 'sha/1 2'), 'https://h/api/files/sha%2F1%202');
  assert.equal(fileUrl('ws://h:8080/ws?user=al%20ice', 'f'), 'http://h:8080/api/files/f?user=al+ice');
});

test('fetchFile sends the token as a header, never in the URL', async () => {
  let seen;
  const blob = await fetchFile('wss://h/ws?token=T.K.N', 'sha', async (url, init) => {
    seen = { url, init };
    return { ok: true, status: 200, blob: async () => new Blob(['bytes']) };
  });
  assert.equal(seen.url, 'https://h/api/files/sha');
  assert.deepEqual(seen.init.headers, { Authorization: 'Bearer T.K.N' });
  assert.equal(await blob.text(), 'bytes');
  assert.equal(needsAuthHeader('wss://h/ws?token=T.K.N'), true);
  assert.equal(needsAuthHeader('ws://h/ws?user=bob'), false);
  await assert.rejects(fetchFile('ws://h/ws', 'gone', async () => ({ ok: false, status: 404 })), /HTTP 404/);
});

test('request/reply matching by id; errors reject with the server code', async () => {
  const { client, sockets, events } = setup();
  client.connect();
  const ws = sockets[0];
  ws.open();
  assert.equal(client.isOpen, true);

  const q = client.query('listConversations', { limit: 5 });
  const g = client.request({ type: 'generate', content: 'hi' });
  const [sq, sg] = ws.sent;
  assert.deepEqual(sq, { type: 'query', name: 'listConversations', args: { limit: 5 }, id: sq.id });
  assert.notEqual(sq.id, sg.id);

  ws.recv({ type: 'ack', id: sg.id, conversationId: 'c', userMessageId: 'u', messageId: 'm' });
  ws.recv({ type: 'start', messageId: 'm', conversationId: 'c' });
  ws.recv({ type: 'error', id: sq.id, code: 'rate_limited', message: 'slow down' });

  assert.equal((await g).messageId, 'm');
  await assert.rejects(q, (e) => e instanceof ProtocolError && e.code === 'rate_limited' && e.message === 'slow down');
  assert.deepEqual(events.map(([e]) => e.type), ['start']);
});

test('errors of subscribe/cancel reach onEvent with the frame that caused them', () => {
  const { client, sockets, events } = setup();
  client.connect();
  sockets[0].open();
  client.subscribe('m1', 12);
  const sub = sockets[0].sent[0];
  assert.deepEqual({ ...sub, id: undefined }, { type: 'subscribe', messageId: 'm1', fromOffset: 12, id: undefined });
  sockets[0].recv({ type: 'error', id: sub.id, messageId: 'm1', code: 'bad_request', message: 'fromOffset past end' });
  sockets[0].recv({ type: 'error', code: 'bad_request', message: 'frame is not valid JSON' });
  assert.equal(events[0][1].type, 'subscribe');
  assert.equal(events[0][1].fromOffset, 12);
  assert.equal(events[1][1], null);
});

test('a dropped socket rejects pending requests and reconnects with backoff', async () => {
  const { client, sockets, timers, statuses, opens } = setup();
  client.connect();
  sockets[0].open();
  assert.equal(opens(), 1);
  const q = client.query('listConversations');
  sockets[0].drop();
  await assert.rejects(q, (e) => e.code === 'disconnected');
  assert.equal(statuses.at(-1).state, 'waiting');
  assert.equal(statuses.at(-1).retryInMs, 500);

  timers.advance(499);
  assert.equal(sockets.length, 1);
  timers.advance(1);
  assert.equal(sockets.length, 2);
  sockets[1].drop(); // refused again: wait longer
  assert.equal(statuses.at(-1).retryInMs, 1000);
  timers.advance(1000);
  sockets[2].open();
  assert.equal(opens(), 2);
  assert.equal(statuses.at(-1).state, 'open');
  assert.equal(client.attempt, 0);
});

test('sending while disconnected fails fast; close() stops reconnecting', async () => {
  const { client, sockets, timers } = setup();
  await assert.rejects(client.query('listConversations'), (e) => e.code === 'disconnected');
  assert.equal(client.subscribe('m', 0), false);
  client.connect();
  sockets[0].open();
  client.close();
  timers.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(client.state, 'closed');
});

test('requests time out; heartbeat pings an idle socket and drops a dead one', async () => {
  const { client, sockets, timers } = setup({ requestTimeoutMs: 100, heartbeatMs: 1000 });
  client.connect();
  sockets[0].open();
  const q = client.query('listConversations');
  timers.advance(100);
  await assert.rejects(q, (e) => e.code === 'timeout');
  assert.ok(!sockets[0].sent.some((f) => f.type === 'ping'));
  timers.advance(900);
  assert.ok(sockets[0].sent.some((f) => f.type === 'ping'));
  sockets[0].recv({ type: 'pong' });
  timers.advance(3000);
  assert.equal(sockets[0].closed, false);
  timers.advance(1000);
  assert.equal(sockets[0].closed, true); // no traffic for 3 heartbeats
  assert.equal(client.state, 'waiting');
});

test('InflightStore keeps messageId, text, reasoning and UTF-16 length per identity', () => {
  const mem = new Map();
  const storage = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, v), removeItem: (k) => mem.delete(k) };
  let now = 1000;
  const a = new InflightStore(storage, 'u:alice', () => now);
  const b = new InflightStore(storage, 'u:bob', () => now);
  a.save({ id: 'm1', conversationId: 'c1', text: 'hi 😀' });
  assert.deepEqual(a.load().m1, { conversationId: 'c1', text: 'hi 😀', length: 5, reasoning: '', savedAt: 1000, messageId: 'm1' });
  assert.deepEqual(b.load(), {});
  a.save({ id: 'm1', conversationId: 'c1', text: 'hi 😀 there', reasoning: 'hmm 🤔' });
  assert.equal(a.load().m1.length, 11);
  assert.equal(a.load().m1.reasoning, 'hmm 🤔'); // resumed with fromReasoningOffset after a reload
  a.remove('m1');
  assert.deepEqual(a.load(), {});
  assert.equal(mem.size, 0);
  a.save({ id: 'old', conversationId: 'c', text: 'x' });
  now += 25 * 3600 * 1000;
  assert.deepEqual(a.load(), {}); // stale records are ignored
  mem.set('chatstream.inflight:u:alice', '{not json');
  assert.deepEqual(a.load(), {});
  assert.deepEqual(new InflightStore(null, 'x').load(), {});
});

test('uploadUrl and uploadFile: POST /api/files with the socket credentials', async () => {
  assert.equal(uploadUrl('wss://h/ws?token=abc'), 'https://h/api/files');
  assert.equal(uploadUrl('ws://h:8080/ws'), 'http://h:8080/api/files');
  let seen;
  const ok = await uploadFile('ws://h/ws?user=bob', new Blob(['x']), async (url, init) => {
    seen = { url, init };
    return { ok: true, status: 201, json: async () => ({ storageId: 'abc', name: 'blob' }) };
  });
  assert.equal(seen.url, 'http://h/api/files?user=bob');
  assert.equal(seen.init.method, 'POST');
  assert.deepEqual(seen.init.headers, {});
  assert.equal(ok.storageId, 'abc');
  await uploadFile('wss://h/ws?token=T.K.N', new Blob(['x']), async (url, init) => {
    seen = { url, init };
    return { ok: true, status: 201, json: async () => ({}) };
  });
  assert.equal(seen.url, 'https://h/api/files');
  assert.deepEqual(seen.init.headers, { Authorization: 'Bearer T.K.N' });
  await assert.rejects(
    uploadFile('ws://h/ws', new Blob(['x']), async () => ({ ok: false, status: 413, json: async () => ({ message: 'file is larger than 1 bytes' }) })),
    /larger than/,
  );
});
