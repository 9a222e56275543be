// Pure logic of the web UI: run with `node --test tests/web/` (Node 20, no deps).
import test from 'node:test';
import assert from 'node:assert/strict';

import { applyDelta, insertionPoint, mergeStreamText, segment, splitsSurrogatePair } from '../../clients/js/src/offsets.js';
import {
  createMessage,
  isToolCallPending,
  mergeMessage,
  messageFromRow,
  reduceMessage,
  toolCallFromRow,
  withToolCallRows,
} from '../../clients/js/src/reducer.js';

const MID = 'm1';
const reduceAll = (msg, events) => events.reduce(reduceMessage, msg);
const delta = (offset, d) => ({ type: 'text-delta', messageId: MID, offset, delta: d });
const texts = (segs) => segs.map((s) => (s.type === 'text' ? s.text : `[${s.call.id}]`)).join('');

// ---------------------------------------------------------------- applyDelta

test('applyDelta appends at the current end', () => {
  assert.deepEqual(applyDelta('', 0, 'Hel'), { text: 'Hel', kind: 'append', applied: 3 });
  assert.equal(applyDelta('Hel', 3, 'lo').text, 'Hello');
});

test('applyDelta ignores a delta entirely inside what we have (duplicate)', () => {
  const r = applyDelta('Hello', 1, 'ell');
  assert.equal(r.kind, 'duplicate');
  assert.equal(r.text, 'Hello');
  assert.equal(r.applied, 0);
  assert.equal(r.mismatch, false);
  assert.equal(applyDelta('Hello', 0, 'Hello').kind, 'duplicate');
  assert.equal(applyDelta('Hello', 1, 'XYZ').mismatch, true);
});

test('applyDelta cuts the overlap and appends only the missing part', () => {
  const r = applyDelta('Hello', 3, 'lo, world');
  assert.equal(r.kind, 'overlap');
  assert.equal(r.text, 'Hello, world');
  assert.equal(r.applied, ', world'.length);
  assert.equal(r.mismatch, false);
});

test('applyDelta reports a gap and applies nothing', () => {
  const r = applyDelta('Hello', 7, 'xx');
  assert.equal(r.kind, 'gap');
  assert.equal(r.text, 'Hello');
  assert.equal(r.missing, 2);
});

test('applyDelta counts UTF-16 units: an emoji (surrogate pair) is 2 units', () => {
  let t = '';
  t = applyDelta(t, 0, 'a😀').text; // 1 + 2 units
  assert.equal(t.length, 3);
  t = applyDelta(t, 3, 'é中').text;
  assert.equal(t, 'a😀é中');
  // A replay starting just after the emoji overlaps exactly at the pair boundary.
  const r = applyDelta(t, 3, 'é中🎉');
  assert.equal(r.kind, 'overlap');
  assert.equal(r.text, 'a😀é中🎉');
  assert.equal(r.text.length, 7);
});

test('applyDelta without a numeric offset appends (lenient)', () => {
  assert.equal(applyDelta('ab', undefined, 'c').text, 'abc');
});

test('replaying the whole stream in different chunkings never duplicates text', () => {
  const full = 'Héllo 😀 wörld 中文 🎉🎉 end';
  const chunks = (sizes) => {
    const out = [];
    let at = 0;
    for (const n of sizes) {
      let end = Math.min(full.length, at + n);
      if (splitsSurrogatePair(full, end)) end++; // the server never splits a pair
      out.push([at, full.slice(at, end)]);
      at = end;
      if (at >= full.length) break;
    }
    if (at < full.length) out.push([at, full.slice(at)]);
    return out;
  };
  // Live stream in small chunks, interleaved with a resume replay in big ones.
  let t = '';
  const live = chunks([3, 1, 4, 1, 5, 9, 2, 6]);
  const replay = chunks([10, 100]);
  for (const [o, d] of [...live.slice(0, 4), ...replay, ...live.slice(4)]) t = applyDelta(t, o, d).text;
  assert.equal(t, full);
});

// ---------------------------------------------------------------- segment / insertion

test('segment inserts a tool call between text[0:pos] and text[pos:]', () => {
  const segs = segment('Let me compute. The answer is 42.', [{ id: 'c1', textPosition: 15 }]);
  assert.deepEqual(segs.map((s) => s.type), ['text', 'tool', 'text']);
  assert.equal(segs[0].text, 'Let me compute.');
  assert.equal(segs[2].text, ' The answer is 42.');
  assert.equal(segs[1].position, 15);
});

test('segment positions are UTF-16 offsets (emoji before the call)', () => {
  const text = '😀😀 calc → done';
  // "😀😀 calc" is 2+2+1+4 = 9 UTF-16 units (but 7 code points).
  const segs = segment(text, [{ id: 'c1', textPosition: 9 }]);
  assert.equal(segs[0].text, '😀😀 calc');
  assert.equal(segs[2].text, ' → done');
  assert.equal(texts(segs), '😀😀 calc[c1] → done');
});

test('a position inside a surrogate pair is moved after the pair', () => {
  const text = 'a😀b';
  assert.equal(splitsSurrogatePair(text, 2), true);
  assert.equal(insertionPoint(text, 2), 3);
  assert.equal(texts(segment(text, [{ id: 'x', textPosition: 2 }])), 'a😀[x]b');
});

test('calls at 0, at the end, past the end, and without position', () => {
  const text = 'abc';
  assert.equal(texts(segment(text, [{ id: 'z', textPosition: 0 }])), '[z]abc');
  assert.equal(texts(segment(text, [{ id: 'e', textPosition: 3 }])), 'abc[e]');
  assert.equal(texts(segment(text, [{ id: 'p', textPosition: 10 }])), 'abc[p]'); // still streaming
  assert.equal(texts(segment(text, [{ id: 'n', textPosition: null }])), 'abc[n]'); // legacy row
  assert.equal(insertionPoint(text, -5), 0);
});

test('several calls keep position order, and arrival order at the same position', () => {
  const calls = [
    { id: 'b', textPosition: 4 },
    { id: 'a', textPosition: 1 },
    { id: 'c', textPosition: 4 },
  ];
  assert.equal(texts(segment('0123456', calls)), '0[a]123[b][c]456');
});

test('segment of empty text still shows the calls', () => {
  assert.equal(texts(segment('', [{ id: 'c', textPosition: 0 }])), '[c]');
  assert.deepEqual(segment('', []), []);
});

test('mergeStreamText keeps the longer of two copies of the same stream', () => {
  assert.equal(mergeStreamText('Hello wor', 'Hello'), 'Hello wor');
  assert.equal(mergeStreamText('Hel', 'Hello'), 'Hello');
  assert.equal(mergeStreamText('Hxllo world', 'Hello'), 'Hello'); // disagree: server wins
  assert.equal(mergeStreamText(null, undefined), '');
});

// ---------------------------------------------------------------- reducer

test('reducer: a full stream with a tool call', () => {
  let m = createMessage({ id: MID, conversationId: 'c', role: 'assistant' });
  m = reduceAll(m, [
    { type: 'start', messageId: MID, conversationId: 'c' },
    delta(0, 'Computing '),
    delta(10, '😀: '),
    { type: 'tool-input-start', messageId: MID, toolCallId: 't1', toolName: 'calculator', textPosition: 14 },
    { type: 'tool-input-delta', messageId: MID, toolCallId: 't1', inputTextDelta: '{"expression":' },
    { type: 'tool-input-delta', messageId: MID, toolCallId: 't1', inputTextDelta: '"6*7"}' },
  ]);
  assert.equal(m.status, 'generating');
  assert.equal(m.text, 'Computing 😀: ');
  assert.equal(m.toolCalls[0].state, 'input-streaming');
  assert.equal(m.toolCalls[0].inputText, '{"expression":"6*7"}');
  assert.equal(isToolCallPending(m.toolCalls[0], m), true);

  m = reduceAll(m, [
    { type: 'tool-input-available', messageId: MID, toolCallId: 't1', toolName: 'calculator', input: { expression: '6*7' }, textPosition: 14 },
  ]);
  assert.equal(isToolCallPending(m.toolCalls[0], m), true);
  m = reduceAll(m, [
    { type: 'tool-output-available', messageId: MID, toolCallId: 't1', output: { result: 42 } },
    delta(14, 'The answer is 42.'),
  ]);
  assert.equal(m.toolCalls[0].state, 'output-available');
  assert.deepEqual(m.toolCalls[0].output, { result: 42 });
  assert.equal(isToolCallPending(m.toolCalls[0], m), false);
  assert.equal(texts(segment(m.text, m.toolCalls)), 'Computing 😀: [t1]The answer is 42.');

  m = reduceMessage(m, { type: 'finish', messageId: MID, status: 'complete', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 9 } });
  assert.equal(m.status, 'complete');
  assert.deepEqual(m.usage, { inputTokens: 3, outputTokens: 9 });
});

test('reducer: tool errors, and {"success":false} results count as errors', () => {
  let m = createMessage({ id: MID, status: 'generating' });
  m = reduceAll(m, [
    { type: 'tool-input-available', messageId: MID, toolCallId: 'a', toolName: 'calculator', input: {}, textPosition: 0 },
    { type: 'tool-output-error', messageId: MID, toolCallId: 'a', errorText: 'division by zero' },
    { type: 'tool-input-available', messageId: MID, toolCallId: 'b', toolName: 'calculator', input: {}, textPosition: 0 },
    { type: 'tool-output-available', messageId: MID, toolCallId: 'b', output: { success: false, error: 'bad expression' } },
  ]);
  assert.equal(m.toolCalls[0].state, 'output-error');
  assert.equal(m.toolCalls[0].errorText, 'division by zero');
  assert.equal(m.toolCalls[1].state, 'output-error');
  assert.equal(m.toolCalls[1].errorText, 'bad expression');
  assert.equal(m.toolCalls.some((c) => isToolCallPending(c, m)), false);
});

test('reducer: no spinner once the message is terminal, even without output', () => {
  let m = createMessage({ id: MID, status: 'generating' });
  m = reduceMessage(m, { type: 'tool-input-start', messageId: MID, toolCallId: 'a', toolName: 'x', textPosition: 0 });
  assert.equal(isToolCallPending(m.toolCalls[0], m), true);
  m = reduceMessage(m, { type: 'finish', messageId: MID, status: 'stopped', finishReason: 'stopped' });
  assert.equal(isToolCallPending(m.toolCalls[0], m), false);
});

test('reducer: replayed events never move a call backwards or duplicate text', () => {
  let m = createMessage({ id: MID, status: 'generating' });
  const events = [
    delta(0, 'ab'),
    { type: 'tool-input-available', messageId: MID, toolCallId: 't', toolName: 'calc', input: { x: 1 }, textPosition: 2 },
    { type: 'tool-output-available', messageId: MID, toolCallId: 't', output: 7 },
    delta(2, 'cd'),
  ];
  m = reduceAll(m, events);
  // A resume replay from offset 1 (start, overlapping text, the completed call again).
  m = reduceAll(m, [{ type: 'start', messageId: MID, conversationId: 'c' }, delta(1, 'b'), events[1], events[2], delta(2, 'cdef')]);
  m = reduceMessage(m, { type: 'tool-input-start', messageId: MID, toolCallId: 't', toolName: 'calc', textPosition: 2 });
  assert.equal(m.text, 'abcdef');
  assert.equal(m.toolCalls.length, 1);
  assert.equal(m.toolCalls[0].state, 'output-available');
  assert.equal(m.toolCalls[0].output, 7);
});

test('reducer: a gap is flagged without applying, and cleared by the next good delta', () => {
  let m = createMessage({ id: MID, status: 'generating' });
  m = reduceMessage(m, delta(0, 'abc'));
  const g = reduceMessage(m, delta(5, 'fg'));
  assert.equal(g.text, 'abc');
  assert.deepEqual(g.gap, { expected: 3, got: 5 });
  const ok = reduceMessage(g, delta(3, 'defg'));
  assert.equal(ok.text, 'abcdefg');
  assert.equal(ok.gap, null);
});

test('reducer: start does not reset text (resume) nor revive a finished message', () => {
  let m = createMessage({ id: MID, text: 'partial', status: 'generating' });
  m = reduceMessage(m, { type: 'start', messageId: MID, conversationId: 'c' });
  assert.equal(m.text, 'partial');
  m = reduceMessage(m, { type: 'finish', messageId: MID, status: 'complete' });
  m = reduceMessage(m, { type: 'start', messageId: MID, conversationId: 'c' });
  assert.equal(m.status, 'complete');
});

test('reducer: an internal error without request id ends the message; others do not', () => {
  const m = createMessage({ id: MID, status: 'generating' });
  assert.equal(reduceMessage(m, { type: 'error', messageId: MID, code: 'bad_request', message: 'x' }).status, 'generating');
  assert.equal(reduceMessage(m, { type: 'error', id: 's1', messageId: MID, code: 'internal', message: 'x' }).status, 'generating');
  const e = reduceMessage(m, { type: 'error', messageId: MID, code: 'internal', message: 'commit failed' });
  assert.equal(e.status, 'error');
  assert.equal(e.error, 'commit failed');
});

test('reducer: unknown events leave the message unchanged', () => {
  const m = createMessage({ id: MID });
  assert.equal(reduceMessage(m, { type: 'something-new', messageId: MID }), m);
});

// ---------------------------------------------------------------- history rows

test('messageFromRow: terminal rows use content, streaming rows the longer of content/partialContent', () => {
  assert.equal(messageFromRow({ id: 'a', role: 'assistant', status: 'complete', content: 'done', partialContent: null }).text, 'done');
  assert.equal(messageFromRow({ id: 'a', role: 'assistant', status: 'generating', content: '', partialContent: 'half' }).text, 'half');
  const r = messageFromRow({ id: 'a', role: 'assistant', status: 'complete', content: 'x', outputTokens: 5, inputTokens: 2 });
  assert.deepEqual(r.usage, { inputTokens: 2, outputTokens: 5 });
});

test('mergeMessage: the stream we hold beats a lagging partialContent; a terminal row wins', () => {
  const mine = createMessage({ id: 'a', role: 'assistant', text: 'Hello wor', status: 'generating' });
  const lag = { id: 'a', role: 'assistant', status: 'generating', content: '', partialContent: 'Hello' };
  assert.equal(mergeMessage(mine, lag).text, 'Hello wor');
  const ahead = { ...lag, partialContent: 'Hello world, more' };
  assert.equal(mergeMessage(mine, ahead).text, 'Hello world, more');
  const done = { id: 'a', role: 'assistant', status: 'stopped', content: 'Hello w' };
  const merged = mergeMessage(mine, done);
  assert.equal(merged.text, 'Hello w');
  assert.equal(merged.status, 'stopped');
  // A finish we already saw is not undone by an older row.
  const fin = { ...mine, status: 'complete', text: 'Hello world' };
  assert.equal(mergeMessage(fin, lag), fin);
});

test('getToolCalls rows: JSON strings parsed, partial vs finished, merged by id', () => {
  const partial = toolCallFromRow({ id: 't', name: 'calculator', arguments: '{"expression":"1+1"}', timestamp: 1, textPosition: 4, isPartial: true });
  assert.equal(partial.state, 'input-available');
  assert.deepEqual(partial.input, { expression: '1+1' });
  const done = toolCallFromRow({ id: 't', name: 'calculator', arguments: '{"expression":"1+1"}', result: '{"result":2}', textPosition: 4, isPartial: false });
  assert.equal(done.state, 'output-available');
  assert.deepEqual(done.output, { result: 2 });
  const failed = toolCallFromRow({ id: 'f', name: 'calculator', arguments: '{}', result: '{"success":false,"error":"nope"}', textPosition: 0 });
  assert.equal(failed.state, 'output-error');
  assert.equal(failed.errorText, 'nope');

  let m = createMessage({ id: MID, text: 'abcdefgh', status: 'generating' });
  // The live stream already has the output; a late query answer with the partial row must not undo it.
  m = reduceAll(m, [
    { type: 'tool-input-available', messageId: MID, toolCallId: 't', toolName: 'calculator', input: { expression: '1+1' }, textPosition: 4 },
    { type: 'tool-output-available', messageId: MID, toolCallId: 't', output: { result: 2 } },
  ]);
  m = withToolCallRows(m, [{ id: 't', name: 'calculator', arguments: '{"expression":"1+1"}', textPosition: 4, isPartial: true }]);
  assert.equal(m.toolCalls.length, 1);
  assert.equal(m.toolCalls[0].state, 'output-available');
  // And a row adds a call the replay did not send (its textPosition is before fromOffset).
  m = withToolCallRows(m, [{ id: 'u', name: 'datetime', arguments: '', textPosition: 1, isPartial: false, result: '"2024"' }]);
  assert.equal(texts(segment(m.text, m.toolCalls)), 'a[u]bcd[t]efgh');
});
