// Pure state of chat messages and the reducer of stream events (no DOM):
// text with tool calls at their textPosition, reasoning (its own UTF-16
// offsets, docs/design.md §9), sources, attachments, status and timing.
import { applyDelta, mergeStreamText } from './offsets.js';

export const TERMINAL = new Set(['complete', 'error', 'stopped', 'interrupted']);
export const isTerminal = (status) => TERMINAL.has(status);

// Tool call states, in the order a call goes through them. A call never goes
// back (events replayed on resume, or a query answer arriving late, cannot
// turn a finished call into a running one).
const TOOL_RANK = { 'input-streaming': 0, 'input-available': 1, 'output-available': 2, 'output-error': 2 };

/** A new message state. */
export function createMessage(fields) {
  return {
    id: fields.id,
    conversationId: fields.conversationId ?? null,
    role: fields.role ?? 'assistant',
    text: fields.text ?? '',
    status: fields.status ?? 'pending',
    model: fields.model ?? null,
    error: fields.error ?? null,
    finishReason: fields.finishReason ?? null,
    usage: fields.usage ?? null,
    createdAt: fields.createdAt ?? null,
    toolCalls: fields.toolCalls ?? [],
    attachments: fields.attachments ?? [],
    sources: fields.sources ?? [], // [{position, url, title?, snippet?}] in position order
    reasoning: fields.reasoning ?? '',
    // none → streaming (reasoning-start) → done (reasoning-end): the model's thinking.
    reasoningState: fields.reasoningState ?? (fields.reasoning ? 'done' : 'none'),
    reasoningTokens: fields.reasoningTokens ?? null,
    timing: fields.timing ?? null, // epoch ms fields of the row (getMessage), see timingFromRow
    gap: null, // {expected, got} while text is missing (caller re-subscribes)
    reasoningGap: null, // the same for the reasoning text
  };
}

const TIMING_FIELDS = ['generationStartedAt', 'thinkingStartedAt', 'thinkingCompletedAt', 'firstTokenAt', 'generationCompletedAt', 'tokensPerSecond'];

/** The timing fields of a message row, or null when the row has none. */
export function timingFromRow(row) {
  const out = {};
  let any = false;
  for (const k of TIMING_FIELDS) {
    out[k] = typeof row?.[k] === 'number' ? row[k] : null;
    any ||= out[k] !== null;
  }
  return any ? out : null;
}

/**
 * Time to first token (ms) and tokens per second of a finished answer, from
 * its timing: TTFT = firstTokenAt - generationStartedAt. Null fields when
 * the server did not record them.
 */
export function answerSpeed(msg) {
  const t = msg?.timing;
  const ttftMs = t && t.firstTokenAt != null && t.generationStartedAt != null ? t.firstTokenAt - t.generationStartedAt : null;
  const tokensPerSecond = t && typeof t.tokensPerSecond === 'number' ? t.tokensPerSecond : null;
  const thinkingMs = t && t.thinkingStartedAt != null && t.thinkingCompletedAt != null ? t.thinkingCompletedAt - t.thinkingStartedAt : null;
  return { ttftMs, tokensPerSecond, thinkingMs };
}

function sourceFromEvent(ev) {
  const s = { position: ev.position, url: ev.url };
  if (ev.title != null) s.title = ev.title;
  if (ev.snippet != null) s.snippet = ev.snippet;
  return s;
}

function upsertSource(sources, s) {
  if (typeof s.position !== 'number' || sources.some((x) => x.position === s.position)) return sources;
  return [...sources, s].sort((a, b) => a.position - b.position);
}

function parseJson(text) {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `{"success":false,"error":...}` is how a failed server tool reports (docs/design.md §7). */
export function toolFailure(output) {
  if (output && typeof output === 'object' && !Array.isArray(output) && output.success === false) {
    const e = output.error;
    return typeof e === 'string' ? e : JSON.stringify(e ?? 'tool failed');
  }
  return null;
}

/** Message state from a `listMessages` / `getMessage` row. */
export function messageFromRow(row) {
  const terminal = isTerminal(row.status);
  const text = terminal ? row.content ?? '' : mergeStreamText(row.content, row.partialContent);
  const reasoning = terminal ? row.reasoning ?? row.partialReasoning ?? '' : mergeStreamText(row.reasoning, row.partialReasoning);
  // Thinking is over once the answer has started or the message ended.
  const reasoningState = !reasoning ? 'none' : terminal || text || row.thinkingCompletedAt != null ? 'done' : 'streaming';
  return createMessage({
    id: row.id,
    conversationId: row.conversationId,
    role: row.role,
    text,
    reasoning,
    reasoningState,
    reasoningTokens: row.reasoningTokens ?? null,
    timing: timingFromRow(row),
    sources: Array.isArray(row.sources) ? row.sources.map(sourceFromEvent).reduce(upsertSource, []) : [],
    status: row.status,
    model: row.model,
    error: row.error,
    finishReason: row.finishReason,
    usage: row.outputTokens != null ? { inputTokens: row.inputTokens, outputTokens: row.outputTokens } : null,
    createdAt: row.createdAt,
  });
}

/** Tool call state from a `getToolCalls` row (arguments/result are JSON strings). */
export function toolCallFromRow(row) {
  const call = {
    id: row.id,
    name: row.name,
    textPosition: row.textPosition ?? null,
    inputText: typeof row.arguments === 'string' ? row.arguments : JSON.stringify(row.arguments ?? {}),
    input: parseJson(row.arguments ?? '{}'),
    output: undefined,
    errorText: null,
    state: 'input-available',
  };
  if (row.result !== undefined && row.result !== null) {
    call.output = parseJson(row.result);
    const failure = toolFailure(call.output);
    call.state = failure ? 'output-error' : 'output-available';
    call.errorText = failure;
  }
  return call;
}

/** Merges two states of the same tool call; the more advanced one wins, fields fill in. */
export function mergeToolCall(a, b) {
  if (!a) return b;
  const [lo, hi] = TOOL_RANK[b.state] >= TOOL_RANK[a.state] ? [a, b] : [b, a];
  const out = { ...lo };
  for (const [k, v] of Object.entries(hi)) if (v !== undefined && v !== null && v !== '') out[k] = v;
  out.state = hi.state;
  return out;
}

function upsertTool(msg, call) {
  const i = msg.toolCalls.findIndex((c) => c.id === call.id);
  const toolCalls = msg.toolCalls.slice();
  if (i < 0) toolCalls.push(call);
  else toolCalls[i] = mergeToolCall(toolCalls[i], call);
  return { ...msg, toolCalls };
}

/** Merges `getToolCalls` rows into a message. */
export function withToolCallRows(msg, rows) {
  let out = msg;
  for (const row of rows ?? []) out = upsertTool(out, toolCallFromRow(row));
  return out;
}

/**
 * Merges a freshly read history row into the state we hold for the same
 * message (which may have streamed further than the database's
 * `partial_content`, that lags by up to --flush-ms, or may have finished
 * after the query was answered).
 */
export function mergeMessage(mine, row) {
  const fresh = messageFromRow(row);
  if (!mine) return fresh;
  const sources = fresh.sources.reduce(upsertSource, mine.sources ?? []);
  if (isTerminal(fresh.status)) {
    // Rows of servers without reasoning columns keep what was streamed.
    const reasoning = fresh.reasoning || mine.reasoning || '';
    return { ...mine, ...fresh, reasoning, reasoningState: reasoning ? 'done' : 'none', sources, toolCalls: mine.toolCalls, attachments: mine.attachments, gap: null, reasoningGap: null };
  }
  if (isTerminal(mine.status)) return mine;
  const reasoning = mergeStreamText(mine.reasoning, fresh.reasoning);
  const reasoningState = mine.reasoningState === 'done' || fresh.reasoningState === 'done' ? 'done' : reasoning ? 'streaming' : 'none';
  return {
    ...mine,
    ...fresh,
    text: mergeStreamText(mine.text, fresh.text),
    reasoning,
    reasoningState,
    sources,
    toolCalls: mine.toolCalls,
    attachments: mine.attachments,
    gap: mine.gap,
    reasoningGap: mine.reasoningGap,
  };
}

/**
 * Applies one server event to the message it concerns and returns the new
 * state (the input is not modified). Unknown events return `msg` unchanged.
 */
export function reduceMessage(msg, ev) {
  switch (ev.type) {
    case 'start':
      return {
        ...msg,
        conversationId: ev.conversationId ?? msg.conversationId,
        status: isTerminal(msg.status) ? msg.status : 'generating',
      };
    case 'text-delta': {
      const r = applyDelta(msg.text, ev.offset, ev.delta);
      if (r.kind === 'gap') return { ...msg, gap: { expected: msg.text.length, got: ev.offset } };
      if (r.applied === 0) return msg;
      return { ...msg, text: r.text, gap: null, status: isTerminal(msg.status) ? msg.status : 'generating' };
    }
    case 'reasoning-start':
      if (msg.reasoningState !== 'none') return msg;
      return { ...msg, reasoningState: 'streaming', status: isTerminal(msg.status) ? msg.status : 'generating' };
    case 'reasoning-delta': {
      const r = applyDelta(msg.reasoning, ev.offset, ev.delta);
      if (r.kind === 'gap') return { ...msg, reasoningGap: { expected: msg.reasoning.length, got: ev.offset } };
      if (r.applied === 0) return msg;
      return {
        ...msg,
        reasoning: r.text,
        reasoningGap: null,
        // A delta is thinking in progress, unless reasoning-end was already seen.
        reasoningState: msg.reasoningState === 'done' ? 'done' : 'streaming',
        status: isTerminal(msg.status) ? msg.status : 'generating',
      };
    }
    case 'reasoning-end':
      if (msg.reasoningState === 'done') return msg;
      return { ...msg, reasoningState: 'done' };
    case 'source': {
      const sources = upsertSource(msg.sources, sourceFromEvent(ev));
      return sources === msg.sources ? msg : { ...msg, sources };
    }
    case 'tool-input-start':
      return upsertTool(msg, {
        id: ev.toolCallId,
        name: ev.toolName,
        textPosition: ev.textPosition ?? null,
        inputText: '',
        input: undefined,
        output: undefined,
        errorText: null,
        state: 'input-streaming',
      });
    case 'tool-input-delta': {
      const i = msg.toolCalls.findIndex((c) => c.id === ev.toolCallId);
      if (i < 0 || msg.toolCalls[i].state !== 'input-streaming') return msg;
      const toolCalls = msg.toolCalls.slice();
      toolCalls[i] = { ...toolCalls[i], inputText: toolCalls[i].inputText + (ev.inputTextDelta ?? '') };
      return { ...msg, toolCalls };
    }
    case 'tool-input-available':
      return upsertTool(msg, {
        id: ev.toolCallId,
        name: ev.toolName,
        textPosition: ev.textPosition ?? null,
        inputText: JSON.stringify(ev.input ?? {}),
        input: ev.input ?? {},
        output: undefined,
        errorText: null,
        state: 'input-available',
      });
    case 'tool-output-available': {
      const failure = toolFailure(ev.output);
      return upsertTool(msg, {
        id: ev.toolCallId,
        output: ev.output,
        errorText: failure,
        state: failure ? 'output-error' : 'output-available',
      });
    }
    case 'tool-output-error':
      return upsertTool(msg, { id: ev.toolCallId, errorText: ev.errorText ?? 'tool failed', state: 'output-error' });
    case 'finish':
      if (isTerminal(msg.status)) return msg; // a replayed finish changes nothing
      return {
        ...msg,
        status: ev.status ?? 'complete',
        finishReason: ev.finishReason ?? null,
        usage: ev.usage ?? msg.usage,
        reasoningTokens: ev.usage?.reasoningTokens ?? msg.reasoningTokens,
        reasoningState: msg.reasoningState === 'none' ? 'none' : 'done',
        error: ev.error ?? (ev.status === 'error' ? msg.error : null),
        gap: null,
        reasoningGap: null,
      };
    case 'error':
      // Only a failure of the generation itself ends the message; a refused
      // subscribe/cancel (bad_request, conflict, ...) says nothing about it.
      if (ev.code === 'internal' && ev.id == null && !isTerminal(msg.status)) {
        return { ...msg, status: 'error', error: ev.message ?? 'internal error' };
      }
      return msg;
    default:
      return msg;
  }
}

const toolChanged = (a, b) => !a || a.state !== b.state || a.inputText !== b.inputText || a.errorText !== b.errorText;

/**
 * Applies one server event and says what it changed: `effect` is the event
 * as a consumer should see it, or null when it changed nothing (a replayed
 * duplicate). A text or reasoning delta is cut to the part that was new, at
 * the offset where it starts, so concatenating the effects' deltas gives the
 * text exactly once, however often the server replayed it.
 */
export function applyEvent(msg, ev) {
  const next = reduceMessage(msg, ev);
  let effect = null;
  switch (ev.type) {
    case 'text-delta':
      if (next.text.length > msg.text.length) effect = { ...ev, offset: msg.text.length, delta: next.text.slice(msg.text.length) };
      break;
    case 'reasoning-delta':
      if (next.reasoning.length > msg.reasoning.length) effect = { ...ev, offset: msg.reasoning.length, delta: next.reasoning.slice(msg.reasoning.length) };
      break;
    case 'reasoning-start':
    case 'reasoning-end':
      if (next.reasoningState !== msg.reasoningState) effect = ev;
      break;
    case 'tool-input-start':
    case 'tool-input-delta':
    case 'tool-input-available':
    case 'tool-output-available':
    case 'tool-output-error': {
      const a = msg.toolCalls.find((c) => c.id === ev.toolCallId);
      const b = next.toolCalls.find((c) => c.id === ev.toolCallId);
      if (b && toolChanged(a, b)) effect = ev;
      break;
    }
    case 'start':
      effect = ev; // the stream decides whether a repeated start matters
      break;
    default:
      if (next !== msg) effect = ev;
  }
  return { msg: next, effect };
}

/** True while a tool call is really in flight: input known or streaming, no output yet, message still running. */
export function isToolCallPending(call, msg) {
  return !isTerminal(msg.status) && (call.state === 'input-streaming' || call.state === 'input-available');
}

/** Messages that need a subscription: assistant messages that have not finished. */
export function needsSubscription(msg) {
  return msg.role === 'assistant' && !isTerminal(msg.status);
}
