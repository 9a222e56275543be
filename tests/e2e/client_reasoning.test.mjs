// Reasoning and sources (docs/design.md §9) through @chatstream/client, against
// the mock server (tests/web/mock_server.mjs: `/think N`, `/source URL
// TITLE`), because the binary's reasoning stream is still being built: the
// reducer's reasoning state, resume from fromReasoningOffset after a drop in
// the middle of the thinking, and the AI SDK transport's reasoning-* and
// source-url chunks read by the `ai` package's own readUIMessageStream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readUIMessageStream } from 'ai';
import { WebSocketChatTransport, connect } from '../../clients/js/src/index.js';
import { startMock } from './mock.mjs';
import { spySocket, until } from './spy_socket.mjs';
import { validated } from './ui_chunks.mjs';

let mock;
const clients = [];
before(async () => {
  mock = await startMock();
});
after(async () => {
  for (const c of clients) c.close();
  await mock?.stop();
});
function open(user, WebSocket) {
  const c = connect({ url: mock.wsUrl, user, WebSocket: WebSocket ?? spySocket().WebSocket });
  clients.push(c);
  return c;
}

test('reasoning streams before the text, with its own offsets, and is kept in the message state', async () => {
  const client = open('r1');
  const stream = client.generate({ content: '/think 12 /tokens 5 /delay 2' });
  const seen = [];
  let reasoning = '';
  for await (const ev of stream) {
    seen.push(ev.type);
    if (ev.type === 'reasoning-delta') {
      assert.equal(ev.offset, reasoning.length);
      reasoning += ev.delta;
    }
  }
  const final = await stream.done;
  assert.equal(final.reasoning, reasoning);
  assert.equal(final.reasoningState, 'done');
  assert.equal(final.reasoningTokens, 12);
  // start, reasoning-start, deltas, reasoning-end, then the answer.
  assert.deepEqual([...new Set(seen)], ['start', 'reasoning-start', 'reasoning-delta', 'reasoning-end', 'text-delta', 'finish']);
  assert.ok(seen.lastIndexOf('reasoning-delta') < seen.indexOf('text-delta'));
  const row = await client.query('getMessage', { messageId: stream.messageId });
  assert.equal(row.reasoning, reasoning);
  assert.equal(row.content, final.text);
});

test('a drop in the middle of the thinking resumes with fromReasoningOffset: nothing repeated or missing', async () => {
  const spy = spySocket();
  const client = open('r2', spy.WebSocket);
  const stream = client.generate({ content: '/think 200 /tokens 20 /delay 3' });
  let reasoning = '';
  let text = '';
  let dropped = -1;
  for await (const ev of stream) {
    if (ev.type === 'reasoning-delta') {
      assert.equal(ev.offset, reasoning.length, 'a reasoning delta that does not start where the reasoning ends');
      reasoning += ev.delta;
      if (dropped < 0 && reasoning.length > 120) {
        dropped = reasoning.length;
        spy.current().ws.terminate();
      }
    }
    if (ev.type === 'text-delta') {
      assert.equal(ev.offset, text.length);
      text += ev.delta;
    }
  }
  const final = await stream.done;
  const row = await client.query('getMessage', { messageId: stream.messageId });
  assert.equal(reasoning, row.reasoning);
  assert.equal(final.reasoning, row.reasoning);
  assert.equal(text, row.content);
  const sub = spy.log.sockets[1]?.sent.find((f) => f.type === 'subscribe');
  assert.ok(sub, 'no subscribe after the reconnect');
  assert.ok(sub.fromReasoningOffset >= dropped, `fromReasoningOffset ${sub.fromReasoningOffset}, held ${dropped} at the drop`);
  assert.equal(sub.fromOffset, 0, 'no text had arrived yet');
  // The mock replayed the reasoning from exactly that offset.
  const first = spy.log.sockets[1].received.find((f) => f.type === 'reasoning-delta');
  assert.equal(first.offset, sub.fromReasoningOffset);
});

test('WebSocketChatTransport gives readUIMessageStream a reasoning part, a source-url part and the text', async () => {
  const client = open('r3');
  const transport = new WebSocketChatTransport({ client });
  const stream = await transport.sendMessages({
    trigger: 'submit-message',
    chatId: 'chat-r3',
    messageId: undefined,
    abortSignal: undefined,
    messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: '/think 15 /delay 2\n/source https://example.com/a?utm_source=x Example A' }] }],
  });
  let last;
  for await (const message of readUIMessageStream({ stream: validated(stream), terminateOnError: true })) last = message;
  const parts = last.parts.filter((p) => p.type !== 'step-start');
  assert.deepEqual(
    parts.map((p) => p.type),
    ['reasoning', 'source-url', 'text'],
  );
  const [thinking, source, answer] = parts;
  assert.equal(thinking.state, 'done');
  const row = await client.query('getMessage', { messageId: last.id });
  assert.equal(thinking.text, row.reasoning);
  assert.equal(answer.text, row.content);
  assert.equal(source.url, 'https://example.com/a?utm_source=x');
  assert.equal(source.title, 'Example A');
  assert.equal(last.metadata.status, 'complete');
  assert.equal(last.metadata.usage.reasoningTokens, 15);
});

test('resume of a message in the middle of its thinking replays reasoning and text from the start for the AI SDK', async () => {
  const first = open('r4');
  const running = first.generate({ content: '/think 150 /tokens 10 /delay 3' });
  const ack = await running.ack;
  await until(() => (running.message?.reasoning.length ?? 0) > 60, 10000, 'some reasoning');
  const transport = new WebSocketChatTransport({ client: open('r4') });
  const stream = await transport.reconnectToStream({ chatId: ack.conversationId });
  assert.ok(stream, 'nothing to resume');
  let last;
  for await (const message of readUIMessageStream({ stream: validated(stream), terminateOnError: true })) last = message;
  const row = await first.query('getMessage', { messageId: ack.messageId });
  const reasoningPart = last.parts.find((p) => p.type === 'reasoning');
  assert.equal(reasoningPart.text, row.reasoning);
  assert.equal(last.parts.filter((p) => p.type === 'text').map((p) => p.text).join(''), row.content);
});
