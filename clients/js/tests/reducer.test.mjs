// The message reducer's reasoning, sources, timing and effects (applyEvent).
// The text/tool parts are covered by tests/web/offsets.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { answerSpeed, applyEvent, createMessage, mergeMessage, messageFromRow, reduceMessage } from '../src/index.js';

const M = 'm1';
const ev = (type, fields = {}) => ({ type, messageId: M, ...fields });
const fresh = () => createMessage({ id: M, role: 'assistant', status: 'pending' });
const run = (events, msg = fresh()) => events.reduce((m, e) => reduceMessage(m, e), msg);

test('reasoning: start, deltas at their own UTF-16 offsets, end; duplicates and overlaps cut; a gap flagged', () => {
  let m = run([ev('start'), ev('reasoning-start'), ev('reasoning-delta', { offset: 0, delta: 'I 🤔 ' }), ev('reasoning-delta', { offset: 2, delta: '🤔 think' })]);
  assert.equal(m.reasoning, 'I 🤔 think');
  assert.equal(m.reasoningState, 'streaming');
  assert.equal(m.status, 'generating');
  m = reduceMessage(m, ev('reasoning-delta', { offset: 40, delta: 'x' }));
  assert.deepEqual(m.reasoningGap, { expected: 10, got: 40 });
  assert.equal(m.reasoning, 'I 🤔 think');
  m = run([ev('reasoning-delta', { offset: 10, delta: '.' }), ev('reasoning-end'), ev('text-delta', { offset: 0, delta: 'Answer' })], m);
  assert.equal(m.reasoningGap, null);
  assert.equal(m.reasoningState, 'done');
  assert.equal(m.text, 'Answer', 'text offsets are independent of the reasoning');
  m = reduceMessage(m, ev('finish', { status: 'complete', usage: { inputTokens: 1, outputTokens: 1, reasoningTokens: 4 } }));
  assert.equal(m.reasoningTokens, 4);
  // A replay after the end changes nothing.
  assert.equal(run([ev('reasoning-start'), ev('reasoning-delta', { offset: 0, delta: 'I' }), ev('finish', { status: 'error' })], m), m);
});

test('applyEvent: effects are the new part only, once; replays give no effect', () => {
  let m = fresh();
  const effects = [];
  for (const e of [
    ev('start'),
    ev('reasoning-start'),
    ev('reasoning-delta', { offset: 0, delta: 'ab' }),
    ev('reasoning-start'), // replayed
    ev('reasoning-delta', { offset: 0, delta: 'abc' }), // replayed with more
    ev('reasoning-end'),
    ev('reasoning-end'),
    ev('text-delta', { offset: 0, delta: 'Hi' }),
    ev('text-delta', { offset: 0, delta: 'Hi' }),
    ev('tool-input-start', { toolCallId: 't1', toolName: 'calc', textPosition: 2 }),
    ev('tool-input-delta', { toolCallId: 't1', inputTextDelta: '{}' }),
    ev('tool-input-available', { toolCallId: 't1', toolName: 'calc', input: {}, textPosition: 2 }),
    ev('tool-output-available', { toolCallId: 't1', output: { result: 1 } }),
    ev('tool-input-available', { toolCallId: 't1', toolName: 'calc', input: {}, textPosition: 2 }), // replayed
    ev('tool-output-available', { toolCallId: 't1', output: { result: 1 } }), // replayed
    ev('source', { position: 1, url: 'https://a.example/', title: 'A' }),
    ev('source', { position: 1, url: 'https://a.example/', title: 'A' }), // replayed
    ev('finish', { status: 'complete' }),
    ev('finish', { status: 'complete' }),
  ]) {
    const r = applyEvent(m, e);
    m = r.msg;
    if (r.effect) effects.push(r.effect.type === 'reasoning-delta' || r.effect.type === 'text-delta' ? `${r.effect.type}@${r.effect.offset}:${r.effect.delta}` : r.effect.type);
  }
  assert.deepEqual(effects, [
    'start',
    'reasoning-start',
    'reasoning-delta@0:ab',
    'reasoning-delta@2:c',
    'reasoning-end',
    'text-delta@0:Hi',
    'tool-input-start',
    'tool-input-delta',
    'tool-input-available',
    'tool-output-available',
    'source',
    'finish',
  ]);
  assert.deepEqual(m.sources, [{ position: 1, url: 'https://a.example/', title: 'A' }]);
});

test('rows: reasoning from reasoning/partialReasoning, timing fields, sources; TTFT and tokens/s', () => {
  const row = {
    id: M,
    role: 'assistant',
    status: 'complete',
    content: 'The answer',
    reasoning: 'Because',
    reasoningTokens: 3,
    generationStartedAt: 1000,
    thinkingStartedAt: 1010,
    thinkingCompletedAt: 1400,
    firstTokenAt: 1450,
    generationCompletedAt: 2450,
    tokensPerSecond: 20.5,
    sources: [{ position: 2, url: 'https://b/' }, { position: 1, url: 'https://a/', title: 'A' }],
  };
  const m = messageFromRow(row);
  assert.equal(m.reasoning, 'Because');
  assert.equal(m.reasoningState, 'done');
  assert.equal(m.reasoningTokens, 3);
  assert.deepEqual(m.sources.map((s) => s.position), [1, 2]);
  assert.deepEqual(answerSpeed(m), { ttftMs: 450, tokensPerSecond: 20.5, thinkingMs: 390 });
  // A row of a server without these fields: no timing, nothing made up.
  const old = messageFromRow({ id: M, role: 'assistant', status: 'complete', content: 'x' });
  assert.equal(old.timing, null);
  assert.deepEqual(answerSpeed(old), { ttftMs: null, tokensPerSecond: null, thinkingMs: null });
  assert.equal(old.reasoningState, 'none');

  // Still thinking: partialReasoning, no text yet.
  const live = messageFromRow({ id: M, role: 'assistant', status: 'generating', content: '', partialContent: null, reasoning: null, partialReasoning: 'Let me' });
  assert.equal(live.reasoning, 'Let me');
  assert.equal(live.reasoningState, 'streaming');
  // What we streamed beyond the lagging row is kept; the finished row brings the timing.
  const mine = { ...live, reasoning: 'Let me see', text: '' };
  const merged = mergeMessage(mine, { id: M, role: 'assistant', status: 'generating', content: '', partialReasoning: 'Let me' });
  assert.equal(merged.reasoning, 'Let me see');
  const done = mergeMessage(merged, row);
  assert.equal(done.reasoning, 'Because');
  assert.equal(done.timing.firstTokenAt, 1450);
});
