// connect() with a fake socket and fake timers: what it sends on each
// (re)connect, what a stream yields, and how refusals are handled.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ChatstreamClient, ProtocolError } from '../src/index.js';
import { FakeTimers, fakeSocketClass, flush } from './fakes.mjs';

function setup(options = {}) {
  const timers = new FakeTimers();
  const { FakeWS, sockets } = fakeSocketClass();
  const client = new ChatstreamClient({ url: 'ws://h/ws', user: 'ann', WebSocket: FakeWS, timers, rng: () => 1, ...options });
  client.open();
  sockets[0].open();
  return { client, timers, sockets, ws: () => sockets.at(-1) };
}

const start = (mid) => ({ type: 'start', messageId: mid, conversationId: 'c1' });
const text = (mid, offset, delta) => ({ type: 'text-delta', messageId: mid, offset, delta });
const think = (mid, offset, delta) => ({ type: 'reasoning-delta', messageId: mid, offset, delta });
const finish = (mid, status = 'complete') => ({ type: 'finish', messageId: mid, status, finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 2 } });

/** A generate acknowledged as message `mid`, with `frames` sent in the same tick as the ack. */
function generate(ws, client, mid, ...frames) {
  const stream = client.generate({ content: 'hi' });
  return flush().then(() => {
    const req = ws().last('generate');
    ws().recv({ type: 'ack', id: req.id, conversationId: 'c1', userMessageId: 'u1', messageId: mid }, ...frames);
    return stream;
  });
}

async function collect(stream) {
  const out = [];
  for await (const ev of stream) out.push(ev);
  return out;
}

test('the url carries the user or a token, and a token function is asked again on every reconnect', async () => {
  let n = 0;
  const { client, sockets, timers } = setup({ user: undefined, token: () => `tok${++n}` });
  assert.equal(sockets[0].url, 'ws://h/ws?token=tok1');
  sockets[0].drop();
  timers.advance(1000);
  assert.equal(sockets[1].url, 'ws://h/ws?token=tok2');
  client.close();
});

test('events sent in the same tick as the ack reach the stream; each delta once, at its offset', async () => {
  const { client, ws } = setup();
  const stream = await generate(ws, client, 'm1', start('m1'), text('m1', 0, 'Hel'), text('m1', 0, 'Hello'), text('m1', 5, ' 😀'), finish('m1'));
  const events = await collect(stream);
  assert.deepEqual(
    events.map((e) => [e.type, e.offset, e.delta]),
    [
      ['start', undefined, undefined],
      ['text-delta', 0, 'Hel'],
      ['text-delta', 3, 'lo'], // the overlap was cut
      ['text-delta', 5, ' 😀'],
      ['finish', undefined, undefined],
    ],
  );
  const final = await stream.done;
  assert.equal(final.text, 'Hello 😀');
  assert.equal(final.status, 'complete');
  assert.deepEqual(await stream.ack, { type: 'ack', id: 'r1', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' });
});

test('after a drop every unfinished message is subscribed again from its text and reasoning offsets', async () => {
  const { client, ws, timers, sockets } = setup();
  const a = await generate(ws, client, 'ma', start('ma'), think('ma', 0, 'hmm 🤔'), text('ma', 0, 'ab'));
  const b = client.subscribe({ id: 'mb', text: 'held text', role: 'assistant', status: 'generating' });
  assert.deepEqual(sockets[0].last('subscribe'), { type: 'subscribe', messageId: 'mb', fromOffset: 9, id: sockets[0].last('subscribe').id });
  sockets[0].drop();
  timers.advance(500);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  const subs = sockets[1].sent.filter((f) => f.type === 'subscribe').map(({ id, ...f }) => f);
  assert.deepEqual(subs, [
    { type: 'subscribe', messageId: 'ma', fromOffset: 2, fromReasoningOffset: 6 },
    { type: 'subscribe', messageId: 'mb', fromOffset: 9 },
  ]);
  // The replay repeats a start and the held text: the stream sees neither again.
  sockets[1].recv(start('ma'), think('ma', 6, '!'), text('ma', 2, 'c'), finish('ma'));
  const events = await collect(a);
  assert.deepEqual(
    events.map((e) => e.type),
    ['start', 'reasoning-delta', 'text-delta', 'reasoning-delta', 'text-delta', 'finish'],
  );
  assert.equal((await a.done).reasoning, 'hmm 🤔!');
  assert.ok(client.isFollowing('mb'));
  assert.ok(!client.isFollowing('ma'), 'a finished message is not followed any more');
  b.close();
  client.close();
});

test('a delta past the end (a gap) makes the client subscribe again from what it holds, at most once per resyncMs', async () => {
  const { client, ws, timers } = setup({ resyncMs: 1000 });
  const stream = await generate(ws, client, 'm1', start('m1'), text('m1', 0, 'abc'));
  const before = ws().sent.filter((f) => f.type === 'subscribe').length;
  timers.advance(1000);
  ws().recv(text('m1', 10, 'zz')); // 7 units never arrived
  assert.equal(stream.message.text, 'abc', 'a delta after a gap was applied');
  const sub = ws().last('subscribe');
  assert.equal(ws().sent.filter((f) => f.type === 'subscribe').length, before + 1);
  assert.equal(sub.fromOffset, 3);
  ws().recv(text('m1', 3, 'defghij'), text('m1', 10, 'zz'));
  assert.equal(stream.message.text, 'abcdefghijzz');
  ws().recv(text('m1', 20, 'x')); // another gap right away: waits for resyncMs
  assert.equal(ws().sent.filter((f) => f.type === 'subscribe').length, before + 1);
  timers.advance(1000);
  assert.equal(ws().sent.filter((f) => f.type === 'subscribe').length, before + 2);
  client.close();
});

test('a refused fromOffset (the server kept less): the client takes the server text, says so, and subscribes from there', async () => {
  const { client, ws, timers, sockets } = setup();
  const stream = await generate(ws, client, 'm1', start('m1'), text('m1', 0, 'Hello wor'));
  sockets[0].drop();
  timers.advance(500);
  sockets[1].open();
  const sub = sockets[1].last('subscribe');
  assert.equal(sub.fromOffset, 9);
  sockets[1].recv({ type: 'error', id: sub.id, messageId: 'm1', code: 'bad_request', message: 'fromOffset 9 is past the end of the text (6)' });
  const q = sockets[1].last('query');
  assert.deepEqual({ name: q.name, args: q.args }, { name: 'getMessage', args: { messageId: 'm1' } });
  sockets[1].recv({ type: 'result', id: q.id, data: { id: 'm1', role: 'assistant', status: 'interrupted', content: 'Hello ', partialContent: null } });
  await flush();
  const again = sockets[1].last('subscribe');
  assert.notEqual(again.id, sub.id);
  assert.equal(again.fromOffset, 6);
  sockets[1].recv(start('m1'), finish('m1', 'interrupted'));
  const events = await collect(stream);
  assert.deepEqual(events.find((e) => e.type === 'truncate'), { type: 'truncate', messageId: 'm1', textLength: 6, reasoningLength: 0 });
  const final = await stream.done;
  assert.equal(final.status, 'interrupted');
  assert.equal(final.text, 'Hello ');
});

test('a subscribe answered not_found ends the stream with that error and marks the message', async () => {
  const { client, ws } = setup();
  const errors = [];
  client.on('error', (e, frame) => errors.push([e.code, frame.messageId]));
  const stream = client.subscribe('gone');
  const sub = ws().last('subscribe');
  ws().recv({ type: 'error', id: sub.id, messageId: 'gone', code: 'not_found', message: 'no such message' });
  await assert.rejects(stream.done, (e) => e instanceof ProtocolError && e.code === 'not_found');
  await assert.rejects(collect(stream), (e) => e.code === 'not_found');
  assert.equal(client.messages.get('gone').status, 'error');
  assert.ok(!client.isFollowing('gone'));
  assert.deepEqual(errors, [['not_found', 'gone']], 'listeners are told (the page shows a banner)');
});

test('cancel resolves with the stopped state; a conflict (already ended) fetches the real final state instead', async () => {
  const { client, ws } = setup();
  await generate(ws, client, 'm1', start('m1'), text('m1', 0, 'abc'));
  const stopping = client.cancel('m1');
  await flush();
  assert.equal(ws().last('cancel').messageId, 'm1');
  ws().recv(finish('m1', 'stopped'));
  assert.equal((await stopping).status, 'stopped');

  await generate(ws, client, 'm2', start('m2'), text('m2', 0, 'xyz'));
  const late = client.cancel('m2');
  await flush();
  ws().recv({ type: 'error', id: ws().last('cancel').id, messageId: 'm2', code: 'conflict', message: 'not generating' });
  const sub = ws().last('subscribe');
  assert.deepEqual({ messageId: sub.messageId, fromOffset: sub.fromOffset }, { messageId: 'm2', fromOffset: 3 });
  ws().recv(start('m2'), finish('m2', 'complete'));
  assert.equal((await late).status, 'complete');

  const missing = client.cancel('nope');
  await flush();
  ws().recv({ type: 'error', id: ws().last('cancel').id, messageId: 'nope', code: 'not_found', message: 'no such message' });
  await assert.rejects(missing, (e) => e.code === 'not_found');
});

test('a refused generate rejects ack and done; requests made before the socket opened wait for it', async () => {
  const timers = new FakeTimers();
  const { FakeWS, sockets } = fakeSocketClass();
  const client = new ChatstreamClient({ url: 'ws://h/ws', WebSocket: FakeWS, timers, rng: () => 1 }).open();
  const list = client.query('listConversations', { limit: 5 });
  const stream = client.generate({ content: 'x', conversationId: 'nope' });
  await flush();
  assert.equal(sockets[0].sent.length, 0);
  sockets[0].open();
  await flush();
  const [q, g] = sockets[0].sent;
  assert.equal(q.type, 'query');
  assert.deepEqual({ type: g.type, conversationId: g.conversationId }, { type: 'generate', conversationId: 'nope' });
  sockets[0].recv({ type: 'result', id: q.id, data: { conversations: [], nextCursor: null } }, { type: 'error', id: g.id, code: 'not_found', message: 'no such conversation: nope' });
  assert.deepEqual(await list, { conversations: [], nextCursor: null });
  await assert.rejects(stream.ack, (e) => e.code === 'not_found');
  await assert.rejects(stream.done, (e) => e.code === 'not_found');
});

test('watch is sent again on every reconnect; changed events reach the iterator', async () => {
  const { client, ws, timers, sockets } = setup();
  const watch = client.watch();
  const w0 = sockets[0].last('watch');
  ws().recv({ type: 'result', id: w0.id, data: { watching: true } });
  await watch.ready;
  sockets[0].drop();
  timers.advance(500);
  sockets[1].open();
  assert.ok(sockets[1].last('watch'), 'watch not sent again after the reconnect');
  sockets[1].recv({ type: 'changed', entity: 'conversation', op: 'update', id: 'c1', conversationId: 'c1', data: { title: 'T' } });
  const { value } = await watch.next();
  assert.equal(value.data.title, 'T');
  watch.close();
  client.close();
});

test('regenerate follows the new answer and forgets the removed messages', async () => {
  const { client, ws } = setup();
  client.messages.set('old', { id: 'old', role: 'assistant', status: 'complete', text: 'x' });
  const stream = client.regenerate('old');
  await flush();
  const m = ws().last('mutate');
  assert.deepEqual({ name: m.name, args: m.args }, { name: 'regenerate', args: { messageId: 'old' } });
  ws().recv({ type: 'result', id: m.id, data: { conversationId: 'c1', messageId: 'new', replacedMessageId: 'old', removedMessageIds: ['old'] } }, start('new'), text('new', 0, 'again'), finish('new'));
  assert.equal((await stream.ack).messageId, 'new');
  assert.equal((await stream.done).text, 'again');
  assert.ok(!client.messages.has('old'));
});

test('an internal error for a streaming message without a request id ends it as error, and is reported', async () => {
  const { client, ws } = setup();
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  const stream = await generate(ws, client, 'm1', start('m1'), text('m1', 0, 'a'));
  ws().recv({ type: 'error', messageId: 'm1', code: 'internal', message: 'commit failed' });
  const final = await stream.done;
  assert.equal(final.status, 'error');
  assert.equal(final.error, 'commit failed');
  assert.deepEqual(errors, ['internal']);
});

test('the heartbeat pings an idle socket and drops one that stays silent', async () => {
  const { client, ws, timers, sockets } = setup({ heartbeatMs: 1000 });
  timers.advance(1000);
  assert.ok(ws().last('ping'), 'no ping after heartbeatMs of silence');
  timers.advance(2000); // 3 × heartbeatMs of silence is still tolerated
  assert.ok(!sockets[0].closed, 'dropped too early');
  timers.advance(1000);
  assert.ok(sockets[0].closed, 'a silent socket was kept');
  client.close();
});
