// Reasoning on /api/chat (docs/design.md §9, issue 22), read by the AI SDK's own
// client code: DefaultChatTransport validates the parts against the `ai`
// package's schema and readUIMessageStream assembles them into `reasoning`
// parts, against the real chatstream binary with the scripted `/think N`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { startServer } from './server.mjs';

let server;
before(async () => {
  server = await startServer(['--token-delay-ms', '1', '--no-auto-title']);
});
after(async () => {
  await server?.stop();
});

let counter = 0;
const newChatId = () => `r${Date.now().toString(36)}${(counter++).toString(36)}`;
const userMessage = (text) => ({ id: `u${counter++}`, role: 'user', parts: [{ type: 'text', text }] });
const transport = (user) => new DefaultChatTransport({ api: `${server.url}/api/chat?user=${user}` });

async function assemble(stream) {
  let last;
  const seen = [];
  for await (const message of readUIMessageStream({ stream, terminateOnError: true })) {
    last = message;
    seen.push(structuredClone(message));
  }
  return { message: last, seen };
}

const send = (user, text) =>
  transport(user).sendMessages({ chatId: newChatId(), messages: [userMessage(text)], trigger: 'submit-message', messageId: undefined });

test('readUIMessageStream yields the reasoning as a part before the answer, streamed, then done', async () => {
  const { message, seen } = await assemble(await send('alice', '/think 30 /tokens 12'));
  const parts = message.parts.filter((p) => p.type !== 'step-start');
  assert.deepEqual(parts.map((p) => p.type), ['reasoning', 'text']);
  const [reasoning, text] = parts;
  assert.equal(reasoning.state, 'done');
  assert.ok(reasoning.text.length > 0);
  assert.ok(text.text.length > 0);
  // It was live: some intermediate message held a streaming reasoning part
  // and no text yet.
  assert.ok(seen.some((m) => m.parts.some((p) => p.type === 'reasoning' && p.state === 'streaming') &&
                             !m.parts.some((p) => p.type === 'text')));
  assert.equal(message.metadata.usage.reasoningTokens, 30);
  assert.equal(message.metadata.usage.outputTokens, 42);
});

test('the tool loop keeps each step\'s reasoning in place', async () => {
  const { message } = await assemble(await send('alice', '/think 4 /tool calculator {"expression":"6*7"}'));
  const parts = message.parts.filter((p) => p.type !== 'step-start');
  assert.deepEqual(parts.map((p) => p.type), ['reasoning', 'text', 'tool-calculator', 'reasoning', 'text']);
  assert.equal(parts[2].state, 'output-available');
  assert.ok(parts.filter((p) => p.type === 'reasoning').every((p) => p.state === 'done' && p.text.length > 0));
  assert.equal(message.metadata.usage.reasoningTokens, 8);
});
