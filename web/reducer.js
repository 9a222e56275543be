// Pure state of chat messages and the reducer of stream events (no DOM).
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
    gap: null, // {expected, got} while text is missing (caller re-subscribes)
  };
}

function parseJson(text) {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `{"success":false,"error":...}` is how a failed server tool reports (DESIGN.md §7). */
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
  return createMessage({
    id: row.id,
    conversationId: row.conversationId,
    role: row.role,
    text: terminal ? row.content ?? '' : mergeStreamText(row.content, row.partialContent),
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
  if (isTerminal(fresh.status)) {
    return { ...mine, ...fresh, toolCalls: mine.toolCalls, attachments: mine.attachments, gap: null };
  }
  if (isTerminal(mine.status)) return mine;
  return { ...mine, ...fresh, text: mergeStreamText(mine.text, fresh.text), toolCalls: mine.toolCalls, attachments: mine.attachments, gap: mine.gap };
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
      return {
        ...msg,
        status: ev.status ?? 'complete',
        finishReason: ev.finishReason ?? null,
        usage: ev.usage ?? msg.usage,
        error: ev.error ?? (ev.status === 'error' ? msg.error : null),
        gap: null,
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

/** True while a tool call is really in flight: input known or streaming, no output yet, message still running. */
export function isToolCallPending(call, msg) {
  return !isTerminal(msg.status) && (call.state === 'input-streaming' || call.state === 'input-available');
}

/** Messages that need a subscription: assistant messages that have not finished. */
export function needsSubscription(msg) {
  return msg.role === 'assistant' && !isTerminal(msg.status);
}
