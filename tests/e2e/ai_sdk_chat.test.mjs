// /api/chat consumed by the AI SDK's own client code (the `ai` package:
// DefaultChatTransport parses and validates the SSE parts, readUIMessageStream
// assembles the message), against the real chatstream binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { startServer } from './server.mjs';

let server;
before(async () => {
  server = await startServer(['--token-delay-ms', '2']);
});
after(async () => {
  await server?.stop();
});

let counter = 0;
const newChatId = () => `e2e${Date.now().toString(36)}${(counter++).toString(36)}`;
const userMessage = (text) => ({ id: `u${counter++}`, role: 'user', parts: [{ type: 'text', text }] });

// Dev mode: the user is ?user=NAME. The resume URL is built by the
// transport as `${api}/${id}/stream`, so a query on `api` needs the hook.
function transport(user) {
  return new DefaultChatTransport({
    api: `${server.url}/api/chat?user=${user}`,
    prepareReconnectToStreamRequest: ({ id }) => ({ api: `${server.url}/api/chat/${id}/stream?user=${user}` }),
  });
}

async function send(t, chatId, text, abortSignal) {
  return t.sendMessages({ chatId, messages: [userMessage(text)], trigger: 'submit-message', messageId: undefined, abortSignal });
}

/** The final UIMessage assembled from a chunk stream (throws on a stream error). */
async function assemble(stream) {
  let last;
  for await (const message of readUIMessageStream({ stream, terminateOnError: true })) last = message;
  return last;
}

const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const post = (path, body, init = {}) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

test('SSE headers and framing of POST /api/chat', async () => {
  const res = await post('/api/chat?user=alice', { id: newChatId(), messages: [userMessage('hello')] });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('x-vercel-ai-ui-message-stream'), 'v1');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('transfer-encoding'), 'chunked');
  // No Origin (not a browser): no CORS headers, and never a wildcard.
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  const body = await res.text();
  assert.match(body, /^data: \{"type":"start","messageId":"[^"]+","messageMetadata":\{"conversationId":"[^"]+"\}\}\n\n/);
  // Every event is one `data: ` line and a blank line; the stream ends with
  // the finish part, then [DONE].
  assert.ok(body.endsWith('\n\n'));
  const events = body.slice(0, -2).split('\n\n');
  for (const event of events) assert.match(event, /^data: [^\n]+$/);
  assert.equal(events.pop(), 'data: [DONE]');
  const parts = events.map((e) => JSON.parse(e.slice('data: '.length)));
  const deltas = parts.filter((p) => p.type === 'text-delta');
  assert.ok(deltas.length > 0);
  assert.deepEqual(parts.at(-1), {
    type: 'finish',
    messageMetadata: { status: 'complete', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: deltas.length, reasoningTokens: 0 } },
  });
  assert.equal(parts.filter((p) => p.type === 'finish').length, 1);
});

test('useChat transport: the tool call sits between the two text parts, with its output', async () => {
  const chatId = newChatId();
  const message = await assemble(await send(transport('alice'), chatId, '/tool calculator {"expression":"6*7"}'));
  const parts = message.parts.filter((p) => p.type !== 'step-start');
  assert.deepEqual(parts.map((p) => p.type), ['text', 'tool-calculator', 'text']);
  const [before, tool, after] = parts;
  assert.ok(before.text.length > 0 && after.text.length > 0);
  assert.equal(before.state, 'done');
  assert.equal(tool.state, 'output-available');
  assert.deepEqual(tool.input, { expression: '6*7' });
  assert.equal(tool.output.result, 42);
  assert.match(after.text, /42/);
  assert.equal(message.role, 'assistant');
  assert.equal(message.metadata.conversationId, chatId);
  assert.equal(message.metadata.status, 'complete');

  // The same chat id again: the conversation exists now and keeps its history.
  const second = await assemble(await send(transport('alice'), chatId, '/tokens 5'));
  assert.equal(second.metadata.status, 'complete');
  assert.equal(second.metadata.usage.outputTokens, 5);
  assert.notEqual(second.id, message.id);

  // useChat's regenerate(): trigger 'regenerate-message' replaces that answer.
  const again = await assemble(
    await transport('alice').sendMessages({ chatId, messages: [userMessage('/tokens 5')], trigger: 'regenerate-message', messageId: second.id }),
  );
  assert.equal(again.metadata.status, 'complete');
  assert.notEqual(again.id, second.id);
  // Someone else's message cannot be regenerated.
  const res = await post('/api/chat?user=mallory', { id: chatId, trigger: 'regenerate-message', messageId: again.id, messages: [] });
  assert.equal(res.status, 404);
});

test('abort keeps the generation running; resume replays the whole message; then 204', async () => {
  const t = transport('alice');
  const chatId = newChatId();
  const ac = new AbortController();
  const reader = (await send(t, chatId, '/tokens 300 /delay 5', ac.signal)).getReader();
  let messageId;
  let seen = '';
  while (seen.length < 20) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'stream ended too early');
    if (value.type === 'start') messageId = value.messageId;
    if (value.type === 'text-delta') seen += value.delta;
  }
  ac.abort(); // what useChat's stop() does; with resumable streams the server goes on
  await reader.cancel().catch(() => {});

  const resumed = await t.reconnectToStream({ chatId });
  assert.ok(resumed, 'expected an active stream to resume');
  const message = await assemble(resumed);
  assert.equal(message.id, messageId);
  assert.equal(message.metadata.status, 'complete');
  assert.equal(message.metadata.usage.outputTokens, 300);
  assert.ok(textOf(message).startsWith(seen), 'the replay starts at the beginning of the message');
  assert.equal(message.parts.filter((p) => p.type === 'text').length, 1);

  assert.equal(await t.reconnectToStream({ chatId }), null, 'nothing to resume once finished');
});

test('POST /api/chat/{id}/stop stops the generation; the stream ends as stopped', async () => {
  const chatId = newChatId();
  const stream = await send(transport('alice'), chatId, '/tokens 5000 /delay 5');
  const [a, b] = stream.tee();
  const reader = a.getReader();
  for (;;) {
    const { value } = await reader.read();
    if (value?.type === 'text-delta') break;
  }
  reader.releaseLock();
  a.cancel().catch(() => {});
  const res = await post(`/api/chat/${chatId}/stop?user=alice`, '');
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, 'stopped');
  const message = await assemble(b);
  assert.equal(message.metadata.status, 'stopped');
  assert.equal(message.metadata.finishReason, 'abort');
  assert.ok(textOf(message).length > 0);
  assert.equal((await post(`/api/chat/${chatId}/stop?user=alice`, '')).status, 204);
});

test('errors: malformed bodies, limits, methods, other users, conflicts', async () => {
  const json = async (res) => ({ status: res.status, body: await res.json() });

  let r = await json(await post('/api/chat?user=alice', '{not json'));
  assert.equal(r.status, 400);
  assert.equal(r.body.error, 'bad_request');
  assert.match(r.body.message, /body is not valid JSON/);

  r = await json(await post('/api/chat?user=alice', { messages: [userMessage('x')] }));
  assert.deepEqual(r, { status: 400, body: { error: 'bad_request', message: "missing field 'id' (the chat id)" } });

  r = await json(await post('/api/chat?user=alice', { id: 'a/b', messages: [userMessage('x')] }));
  assert.equal(r.status, 400);

  r = await json(await post('/api/chat?user=alice', { id: newChatId(), messages: [{ id: 'x', role: 'assistant', parts: [] }] }));
  assert.equal(r.status, 400);
  assert.match(r.body.message, /last message must have role 'user'/);

  const big = await post('/api/chat?user=alice', { id: newChatId(), messages: [userMessage('x'.repeat(1100000))] });
  assert.equal(big.status, 413);

  assert.equal((await fetch(`${server.url}/api/chat?user=alice`)).status, 405);
  assert.equal((await fetch(`${server.url}/api/chat/abc/nope?user=alice`)).status, 404);

  // A preflight from a foreign page is refused (403, no CORS headers); the
  // server's own origin (and --allowed-origins) gets itself echoed back.
  const preflight = (origin) => fetch(`${server.url}/api/chat`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' } });
  const foreign = await preflight('http://localhost:3000');
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  const pre = await preflight(server.url);
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), server.url);
  assert.match(pre.headers.get('vary') ?? '', /origin/i);
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);

  // alice streams in her chat; bob cannot see, resume, stop or post into it.
  const chatId = newChatId();
  const ac = new AbortController();
  const reader = (await send(transport('alice'), chatId, '/tokens 5000 /delay 5', ac.signal)).getReader();
  await reader.read();
  assert.equal((await fetch(`${server.url}/api/chat/${chatId}/stream?user=bob`)).status, 204);
  assert.equal((await post(`/api/chat/${chatId}/stop?user=bob`, '')).status, 204);
  r = await json(await post('/api/chat?user=bob', { id: chatId, messages: [userMessage('hi')] }));
  assert.equal(r.status, 404);
  assert.equal(r.body.error, 'not_found');
  // ... and that refused insert leaves nothing behind: bob's next chat works.
  const bobs = await post('/api/chat?user=bob', { id: newChatId(), messages: [userMessage('/tokens 2')] });
  assert.equal(bobs.status, 200);
  assert.match(await bobs.text(), /"status":"complete"/);
  // One generation per conversation.
  r = await json(await post('/api/chat?user=alice', { id: chatId, messages: [userMessage('again')] }));
  assert.equal(r.status, 409);
  assert.equal(r.body.error, 'conflict');
  // alice can resume it (and the SSE headers are there too).
  const resumed = await fetch(`${server.url}/api/chat/${chatId}/stream?user=alice`);
  assert.equal(resumed.status, 200);
  assert.equal(resumed.headers.get('x-vercel-ai-ui-message-stream'), 'v1');
  await resumed.body.cancel();
  ac.abort();
  assert.equal((await post(`/api/chat/${chatId}/stop?user=alice`, '')).status, 200);
});

test('keep-alive: the connection serves the next request after the last chunk', async () => {
  const net = await import('node:net');
  const { port, hostname } = new URL(server.url);
  const socket = net.connect(Number(port), hostname);
  await new Promise((r) => socket.once('connect', r));
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => (buf += d));
  const until = (pred) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got:\n${buf}`)), 10000);
      const poll = () => (pred() ? (clearTimeout(timer), resolve()) : setTimeout(poll, 5));
      poll();
    });
  const body = JSON.stringify({ id: newChatId(), messages: [userMessage('/tokens 3')] });
  socket.write(`POST /api/chat?user=alice HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await until(() => buf.endsWith('data: [DONE]\n\n\r\n0\r\n\r\n'));
  buf = '';
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => buf.endsWith('ok\n'));
  assert.match(buf, /^HTTP\/1\.1 200 OK/);
  socket.destroy();
});
