// The event → UI message chunk mapping of WebSocketChatTransport, without
// the `ai` package (tests/e2e runs the real Chat and readUIMessageStream).
import test from 'node:test';
import assert from 'node:assert/strict';
import { UIChunkMapper, applyEvent, createMessage } from '../src/index.js';

const M = 'm1';
const ev = (type, fields = {}) => ({ type, messageId: M, conversationId: 'c1', ...fields });

/** Feeds events through the reducer (effects only, as a MessageStream does) and the mapper. */
function chunksOf(events, mapper = new UIChunkMapper(), msg = createMessage({ id: M, conversationId: 'c1', role: 'assistant' })) {
  const out = [];
  for (const e of events) {
    const r = applyEvent(msg, e);
    msg = r.msg;
    if (r.effect) out.push(...mapper.map(r.effect, msg));
  }
  return out;
}

test('reasoning, text, a tool call and more text: parts in textPosition order, text after the call is a new part', () => {
  const chunks = chunksOf([
    ev('start'),
    ev('reasoning-start'),
    ev('reasoning-delta', { offset: 0, delta: 'hmm' }),
    ev('reasoning-end'),
    ev('text-delta', { offset: 0, delta: 'Let me' }),
    ev('tool-input-start', { toolCallId: 't1', toolName: 'calculator', textPosition: 6 }),
    ev('tool-input-delta', { toolCallId: 't1', inputTextDelta: '{"expression":"1+1"}' }),
    ev('tool-input-available', { toolCallId: 't1', toolName: 'calculator', input: { expression: '1+1' }, textPosition: 6 }),
    ev('tool-output-available', { toolCallId: 't1', output: { success: true, result: 2 } }),
    ev('source', { position: 1, url: 'https://a.example/', title: 'A' }),
    ev('text-delta', { offset: 6, delta: ' 2.' }),
    ev('finish', { status: 'complete', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 4, reasoningTokens: 1 } }),
  ]);
  assert.deepEqual(chunks, [
    { type: 'start', messageId: M, messageMetadata: { conversationId: 'c1' } },
    { type: 'reasoning-start', id: 'reasoning-0' },
    { type: 'reasoning-delta', id: 'reasoning-0', delta: 'hmm' },
    { type: 'reasoning-end', id: 'reasoning-0' },
    { type: 'text-start', id: 'text-0' },
    { type: 'text-delta', id: 'text-0', delta: 'Let me' },
    { type: 'text-end', id: 'text-0' },
    { type: 'tool-input-start', toolCallId: 't1', toolName: 'calculator' },
    { type: 'tool-input-delta', toolCallId: 't1', inputTextDelta: '{"expression":"1+1"}' },
    { type: 'tool-input-available', toolCallId: 't1', toolName: 'calculator', input: { expression: '1+1' } },
    { type: 'tool-output-available', toolCallId: 't1', output: { success: true, result: 2 } },
    { type: 'source-url', sourceId: 'source-1', url: 'https://a.example/', title: 'A' },
    { type: 'text-start', id: 'text-1' },
    { type: 'text-delta', id: 'text-1', delta: ' 2.' },
    { type: 'text-end', id: 'text-1' },
    { type: 'finish', messageMetadata: { conversationId: 'c1', status: 'complete', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 4, reasoningTokens: 1 } } },
  ]);
});

test('stopped, error and interrupted endings', () => {
  const tail = (status, extra = {}) => chunksOf([ev('start'), ev('text-delta', { offset: 0, delta: 'a' }), ev('finish', { status, finishReason: status, ...extra })]).slice(3).map((c) => c.type + (c.errorText ? `:${c.errorText}` : ''));
  assert.deepEqual(tail('stopped'), ['text-end', 'abort', 'finish']);
  assert.deepEqual(tail('error', { error: 'upstream failed' }), ['text-end', 'error:upstream failed', 'finish']);
  assert.deepEqual(tail('interrupted'), ['text-end', 'error:the answer was interrupted (the server restarted while it was generating)', 'finish']);
});

test('a snapshot replays what a message already holds, then events continue without repeats', () => {
  const held = createMessage({
    id: M,
    conversationId: 'c1',
    role: 'assistant',
    status: 'generating',
    reasoning: 'why',
    reasoningState: 'done',
    text: 'AB😀C',
    toolCalls: [{ id: 't1', name: 'calc', textPosition: 4, input: { x: 1 }, output: { result: 1 }, state: 'output-available' }],
  });
  const mapper = new UIChunkMapper();
  const snap = mapper.snapshot(held);
  assert.deepEqual(
    snap.map((c) => [c.type, c.delta ?? c.toolCallId ?? c.id]),
    [
      ['start', undefined],
      ['reasoning-start', 'reasoning-0'],
      ['reasoning-delta', 'why'],
      ['reasoning-end', 'reasoning-0'],
      ['text-start', 'text-0'],
      ['text-delta', 'AB😀'],
      ['text-end', 'text-0'],
      ['tool-input-available', 't1'],
      ['tool-output-available', 't1'],
      ['text-start', 'text-1'],
      ['text-delta', 'C'],
    ],
  );
  const more = chunksOf([ev('start'), ev('text-delta', { offset: 4, delta: 'C' }), ev('text-delta', { offset: 5, delta: 'D' })], mapper, held);
  assert.deepEqual(more, [{ type: 'text-delta', id: 'text-1', delta: 'D' }]);
});
