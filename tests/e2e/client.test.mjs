// @chatstream/client (clients/js) against the real binary over /ws, in Node
// with the `ws` package: exact resume after a dropped socket, and a server
// killed mid-answer and restarted on the same database.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../clients/js/src/index.js';
import { startServer } from './server.mjs';
import { spySocket, until } from './spy_socket.mjs';

const wsUrl = (server) => `${server.url.replace(/^http/, 'ws')}/ws`;
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** Text deltas of `received` frames for one message, checked to be contiguous from their first offset. */
function contiguous(frames, messageId) {
  const deltas = frames.filter((f) => f.type === 'text-delta' && f.messageId === messageId);
  let at = deltas[0]?.offset ?? 0;
  for (const d of deltas) {
    assert.equal(d.offset, at, `a delta at ${d.offset} where ${at} was expected`);
    at += d.delta.length;
  }
  return { from: deltas[0]?.offset ?? null, to: at };
}

test('a socket dropped mid-stream resumes from the text it held: no gap, no overlap', { timeout: 60000 }, async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const spy = spySocket();
  const client = connect({ url: wsUrl(server), user: 'alice', WebSocket: spy.WebSocket });
  cleanup.push(() => client.close());

  const stream = client.generate({ content: '/tokens 400 /delay 5' });
  let text = '';
  let heldAtDrop = -1;
  for await (const ev of stream) {
    if (ev.type !== 'text-delta') continue;
    assert.equal(ev.offset, text.length, 'the stream gave a delta that does not start where the text ends');
    text += ev.delta;
    if (heldAtDrop < 0 && text.length > 100) {
      heldAtDrop = text.length;
      spy.current().ws.terminate(); // no close handshake: what a network drop looks like
    }
  }
  const final = await stream.done;
  assert.equal(final.status, 'complete');
  assert.equal(final.text, text);
  const stored = await client.query('getMessage', { messageId: stream.messageId });
  assert.equal(stored.content, text, 'the streamed text differs from the stored content');
  assert.equal(stored.outputTokens, 400);

  // On the wire: the second socket subscribed from what the first one had
  // delivered, and the server's replay started exactly there.
  assert.ok(spy.log.sockets.length >= 2, 'the client never reconnected');
  const [first, second] = spy.log.sockets;
  const sub = second.sent.find((f) => f.type === 'subscribe' && f.messageId === stream.messageId);
  assert.ok(sub, 'no subscribe after the reconnect');
  const delivered = contiguous(first.received, stream.messageId);
  assert.ok(sub.fromOffset >= heldAtDrop && sub.fromOffset === delivered.to, `fromOffset ${sub.fromOffset}, first socket delivered up to ${delivered.to}`);
  const replay = contiguous(second.received, stream.messageId);
  assert.equal(replay.from, sub.fromOffset, 'the resumed text does not start at fromOffset');
  assert.equal(replay.to, text.length);
});

test('the server killed mid-answer and restarted: the message ends interrupted and the client says so', { timeout: 60000 }, async (t) => {
  let server = await startServer();
  const spy = spySocket();
  const client = connect({ url: wsUrl(server), user: 'bob', WebSocket: spy.WebSocket });
  cleanup.push(() => client.close());
  const statuses = [];
  client.on('message', (m) => m.role === 'assistant' && statuses.at(-1) !== m.status && statuses.push(m.status));

  const stream = client.generate({ content: '/tokens 5000 /delay 10' });
  const { messageId } = await stream.ack;
  await until(() => (stream.message?.text.length ?? 0) > 60, 15000, 'some text');
  await server.kill();
  const heldAtKill = stream.message.text.length;
  server = await server.restart();
  cleanup.push(() => server.stop());

  const final = await stream.done;
  assert.equal(final.status, 'interrupted', `status ${final.status}`);
  assert.equal(statuses.at(-1), 'interrupted', `the client reported ${statuses.join(' → ')}`);
  const stored = await client.query('getMessage', { messageId });
  assert.equal(stored.status, 'interrupted');
  // The server kept its last flush (about --flush-ms behind what it sent,
  // or ahead of what a backed-up socket delivered); the client ends on
  // exactly that text, whichever side was ahead.
  assert.equal(final.text, stored.content, `client ${final.text.length} units, stored ${stored.content.length}`);
  assert.ok(stored.content.length > 0, 'nothing was flushed before the kill');
  t.diagnostic(`held ${heldAtKill} units at the kill, the server kept ${stored.content.length}`);
});
