// The AI SDK's own Chat class (ai 5's AbstractChat, with the small state
// holder a framework binding gives it) driving conversations through
// WebSocketChatTransport (clients/js) against the real binary: tool calls in
// place, several turns in one conversation, regenerate, stop, a dropped
// socket mid-answer, and resumeStream after a "reload".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AbstractChat } from 'ai';
import { WebSocketChatTransport, connect } from '../../clients/js/src/index.js';
import { startServer } from './server.mjs';
import { spySocket, until } from './spy_socket.mjs';
import { validated } from './ui_chunks.mjs';

// The package's transport, with every chunk checked against ai's own schema.
class CheckedTransport extends WebSocketChatTransport {
  async sendMessages(options) {
    return validated(await super.sendMessages(options));
  }
  async reconnectToStream(options) {
    const stream = await super.reconnectToStream(options);
    return stream && validated(stream);
  }
}

// What @ai-sdk/react's Chat adds to AbstractChat, minus React: a state holder.
class ArrayState {
  status = 'ready';
  error = undefined;
  constructor(messages = []) {
    this.messages = messages;
  }
  pushMessage = (m) => {
    this.messages = this.messages.concat(m);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (i, m) => {
    this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)];
  };
  snapshot = (v) => structuredClone(v);
}
class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new ArrayState(messages) });
  }
}

let server;
const clients = [];
before(async () => {
  server = await startServer();
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

function open(user, WebSocket) {
  const client = connect({ url: `${server.url.replace(/^http/, 'ws')}/ws`, user, WebSocket: WebSocket ?? spySocket().WebSocket });
  clients.push(client);
  return client;
}
const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const partTypes = (message) => message.parts.filter((p) => p.type !== 'step-start').map((p) => p.type);
let n = 0;
const chatId = () => `ws-chat-${Date.now().toString(36)}-${n++}`;

test('Chat + WebSocketChatTransport: a tool call between two text parts, then more turns in the same conversation', { timeout: 60000 }, async () => {
  const client = open('carol');
  const transport = new CheckedTransport({ client });
  const errors = [];
  const chat = new Chat({ id: chatId(), transport, onError: (e) => errors.push(e) });

  await chat.sendMessage({ text: '/tool calculator {"expression":"6*7"}' });
  assert.deepEqual(errors, []);
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
  const answer = chat.messages[1];
  assert.equal(answer.role, 'assistant');
  assert.deepEqual(partTypes(answer), ['text', 'tool-calculator', 'text']);
  const tool = answer.parts.find((p) => p.type === 'tool-calculator');
  assert.equal(tool.state, 'output-available');
  assert.deepEqual(tool.input, { expression: '6*7' });
  assert.equal(tool.output.result, 42);
  // The UI message is the stored message: same id, same text, the call at its textPosition.
  const stored = await client.query('getMessage', { messageId: answer.id });
  assert.equal(textOf(answer), stored.content);
  const [call] = await client.query('getToolCalls', { messageId: answer.id });
  assert.equal(answer.parts.find((p) => p.type === 'text').text.length, call.textPosition);
  assert.equal(answer.metadata.status, 'complete');

  // The chat id was new to the server: the first message created the conversation.
  const conversationId = transport.conversationIdOf(chat.id);
  assert.equal(conversationId, stored.conversationId);

  await chat.sendMessage({ text: 'and now some words /tokens 25' });
  assert.equal(chat.messages.length, 4);
  assert.equal(chat.messages[3].metadata.usage.outputTokens, 25);
  const { messages } = await client.query('listMessages', { conversationId });
  assert.deepEqual(
    messages.map((m) => m.role),
    ['user', 'assistant', 'user', 'assistant'],
  );
  assert.equal(messages[3].id, chat.messages[3].id);
  assert.equal(messages[3].content, textOf(chat.messages[3]));

  // regenerate(): mutate regenerate of the last answer; the new one replaces it.
  const old = chat.messages[3].id;
  await chat.regenerate();
  assert.deepEqual(errors, []);
  assert.equal(chat.messages.length, 4);
  assert.notEqual(chat.messages[3].id, old);
  const after = await client.query('listMessages', { conversationId });
  assert.equal(after.messages.length, 4);
  assert.ok(!after.messages.some((m) => m.id === old), 'the replaced answer is still stored');
  assert.equal(after.messages[1].id, chat.messages[1].id);
  assert.equal(after.messages[3].id, chat.messages[3].id);
  assert.equal(after.messages[3].content, textOf(chat.messages[3]));
});

test('a socket dropped in the middle of an answer is invisible to the Chat: the text is exact', { timeout: 60000 }, async () => {
  const spy = spySocket();
  const client = open('dave', spy.WebSocket);
  const chat = new Chat({ id: chatId(), transport: new CheckedTransport({ client }) });
  const sent = chat.sendMessage({ text: '/tokens 400 /delay 5' });
  await until(() => textOf(chat.messages[1] ?? { parts: [] }).length > 80, 15000, 'some streamed text');
  spy.current().ws.terminate();
  await sent;
  assert.equal(chat.status, 'ready');
  assert.ok(spy.log.sockets.length >= 2, 'the client never reconnected');
  const stored = await client.query('getMessage', { messageId: chat.messages[1].id });
  assert.equal(stored.outputTokens, 400);
  assert.equal(textOf(chat.messages[1]), stored.content, 'the Chat shows text that differs from the stored content');
});

test('stop() cancels the generation (cancelOnAbort): stored as stopped, the Chat is ready', { timeout: 60000 }, async () => {
  const client = open('erin');
  const chat = new Chat({ id: chatId(), transport: new CheckedTransport({ client }) });
  const sent = chat.sendMessage({ text: '/tokens 3000 /delay 10' });
  await until(() => textOf(chat.messages[1] ?? { parts: [] }).length > 30, 15000, 'some streamed text');
  const messageId = chat.messages[1].id;
  await chat.stop();
  await sent;
  assert.equal(chat.status, 'ready');
  await until(() => client.messages.get(messageId)?.status === 'stopped', 10000, 'the stopped finish');
  const stored = await client.query('getMessage', { messageId });
  assert.equal(stored.status, 'stopped');
});

test('resumeStream() after a "reload" replays the running answer from its start; null when nothing runs', { timeout: 60000 }, async () => {
  const first = open('frank');
  const running = first.generate({ content: '/tool calculator {"expression":"2+3"} /tokens 300 /delay 5' });
  const ack = await running.ack;
  await until(() => (running.message?.text.length ?? 0) > 40, 15000, 'some text');

  // Another client (a reloaded page) opens the conversation by its id.
  const second = open('frank');
  const chat = new Chat({ id: ack.conversationId, transport: new CheckedTransport({ client: second }) });
  await chat.resumeStream();
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 1);
  const answer = chat.messages[0];
  assert.equal(answer.id, ack.messageId);
  const stored = await second.query('getMessage', { messageId: ack.messageId });
  assert.equal(stored.status, 'complete');
  assert.equal(textOf(answer), stored.content);
  assert.deepEqual(partTypes(answer), ['text', 'tool-calculator', 'text']);

  const idle = new Chat({ id: ack.conversationId, transport: new CheckedTransport({ client: second }) });
  await idle.resumeStream();
  assert.equal(idle.messages.length, 0, 'resumed although nothing runs');
  assert.equal(idle.status, 'ready');
});
