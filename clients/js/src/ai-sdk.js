// The AI SDK's ChatTransport over the chatstream WebSocket (issue 24), so
// `useChat({ transport })` streams over /ws with exact resume: a dropped
// socket is resumed by the client from its offsets, and the UI message
// stream never sees it. No import of `ai`: the chunks are plain objects with
// the fields of its UIMessageChunk type (checked against ai 5's types by
// tests/e2e/client_ai_sdk.test.mjs, which runs its Chat and readUIMessageStream).
import { segment } from './offsets.js';
import { isTerminal } from './reducer.js';

const INTERRUPTED = 'the answer was interrupted (the server restarted while it was generating)';

/**
 * Turns the events of one message (a MessageStream's effects) into UI
 * message stream chunks (`start`, `text-*`, `reasoning-*`, `tool-*`,
 * `source-url`, `finish`), the same mapping as the server's /api/chat
 * (docs/ai-sdk.md): text after a tool call is a new text part, so parts keep
 * the order of textPosition.
 */
export class UIChunkMapper {
  #textId = null;
  #texts = 0;
  #reasoningId = null;
  #reasonings = 0;
  #started = false;
  #finished = false;

  #start(msg) {
    if (this.#started) return [];
    this.#started = true;
    return [{ type: 'start', messageId: msg.id, messageMetadata: { conversationId: msg.conversationId } }];
  }

  #closeText(out) {
    if (this.#textId) out.push({ type: 'text-end', id: this.#textId });
    this.#textId = null;
  }

  #closeReasoning(out) {
    if (this.#reasoningId) out.push({ type: 'reasoning-end', id: this.#reasoningId });
    this.#reasoningId = null;
  }

  #text(out, delta) {
    this.#closeReasoning(out);
    if (!this.#textId) {
      this.#textId = `text-${this.#texts++}`;
      out.push({ type: 'text-start', id: this.#textId });
    }
    out.push({ type: 'text-delta', id: this.#textId, delta });
  }

  #reasoning(out, delta) {
    if (!this.#reasoningId) {
      this.#closeText(out);
      this.#reasoningId = `reasoning-${this.#reasonings++}`;
      out.push({ type: 'reasoning-start', id: this.#reasoningId });
    }
    if (delta) out.push({ type: 'reasoning-delta', id: this.#reasoningId, delta });
  }

  #tool(out, call) {
    this.#closeText(out);
    out.push({ type: 'tool-input-available', toolCallId: call.id, toolName: call.name, input: call.input ?? {} });
    if (call.state === 'output-error') out.push({ type: 'tool-output-error', toolCallId: call.id, errorText: call.errorText ?? 'tool failed' });
    else if (call.state === 'output-available') out.push({ type: 'tool-output-available', toolCallId: call.id, output: call.output });
  }

  /** Chunks for what a message already holds (a resumed stream replays the whole message, as the AI SDK expects). */
  snapshot(msg) {
    if (!msg || (!msg.text && !msg.reasoning && !msg.toolCalls.length && !msg.sources.length)) return [];
    const out = this.#start(msg);
    if (msg.reasoning) {
      this.#reasoning(out, msg.reasoning);
      if (msg.reasoningState === 'done') this.#closeReasoning(out);
    }
    for (const s of msg.sources) out.push(sourceChunk(s));
    for (const seg of segment(msg.text, msg.toolCalls)) {
      if (seg.type === 'text') this.#text(out, seg.text);
      else this.#tool(out, seg.call);
    }
    return out;
  }

  /** Chunks for one effect; `msg` is the message state after it. */
  map(ev, msg) {
    const out = ev.type === 'start' ? [] : this.#start(msg);
    switch (ev.type) {
      case 'start':
        return this.#start(msg);
      case 'text-delta':
        if (ev.delta) this.#text(out, ev.delta);
        break;
      case 'reasoning-start':
        this.#reasoning(out, '');
        break;
      case 'reasoning-delta':
        if (ev.delta) this.#reasoning(out, ev.delta);
        break;
      case 'reasoning-end':
        this.#closeReasoning(out);
        break;
      case 'source':
        out.push(sourceChunk(ev));
        break;
      case 'tool-input-start':
        this.#closeText(out);
        this.#closeReasoning(out);
        out.push({ type: 'tool-input-start', toolCallId: ev.toolCallId, toolName: ev.toolName });
        break;
      case 'tool-input-delta':
        out.push({ type: 'tool-input-delta', toolCallId: ev.toolCallId, inputTextDelta: ev.inputTextDelta ?? '' });
        break;
      case 'tool-input-available':
        this.#closeText(out);
        this.#closeReasoning(out);
        out.push({ type: 'tool-input-available', toolCallId: ev.toolCallId, toolName: ev.toolName, input: ev.input ?? {} });
        break;
      case 'tool-output-available':
        out.push({ type: 'tool-output-available', toolCallId: ev.toolCallId, output: ev.output });
        break;
      case 'tool-output-error':
        out.push({ type: 'tool-output-error', toolCallId: ev.toolCallId, errorText: ev.errorText ?? 'tool failed' });
        break;
      case 'finish':
        this.#end(out, msg);
        break;
      case 'error':
        // The generation failed without a finish (its final commit).
        if (isTerminal(msg.status)) this.#end(out, msg);
        break;
      default:
        // `truncate`: a UI message stream cannot take text back; the AI SDK
        // message keeps what it showed (the client's state has the server's).
        break;
    }
    return out;
  }

  #end(out, msg) {
    if (this.#finished) return;
    this.#finished = true;
    this.#closeText(out);
    this.#closeReasoning(out);
    const metadata = { conversationId: msg.conversationId, status: msg.status };
    if (msg.finishReason) metadata.finishReason = msg.finishReason;
    if (msg.usage) metadata.usage = msg.usage;
    if (msg.error) metadata.error = msg.error;
    if (msg.status === 'stopped') out.push({ type: 'abort' });
    else if (msg.status === 'error') out.push({ type: 'error', errorText: msg.error ?? 'the generation failed' });
    else if (msg.status === 'interrupted') out.push({ type: 'error', errorText: INTERRUPTED });
    out.push({ type: 'finish', messageMetadata: metadata });
  }
}

function sourceChunk(s) {
  const c = { type: 'source-url', sourceId: `source-${s.position}`, url: s.url };
  if (s.title != null) c.title = s.title;
  return c;
}

const abortError = () => new DOMException('The operation was aborted.', 'AbortError');

/**
 * A ReadableStream of UI message chunks for a MessageStream: first what the
 * message already held (stream.initial), then its events until `finish`.
 * An abort of `abortSignal` calls `onAbort` and errors the stream with an
 * AbortError (what the AI SDK's Chat expects of a stopped request).
 */
export function toUIMessageStream(stream, { abortSignal, onAbort } = {}) {
  const mapper = new UIChunkMapper();
  let first = true;
  let done = false;
  return new ReadableStream({
    start(controller) {
      if (!abortSignal) return;
      const abort = () => {
        if (done) return;
        done = true;
        onAbort?.();
        stream.close();
        controller.error(abortError());
      };
      if (abortSignal.aborted) abort();
      else abortSignal.addEventListener('abort', abort, { once: true });
    },
    async pull(controller) {
      for (;;) {
        if (done) return;
        const out = first ? mapper.snapshot(stream.initial) : null;
        first = false;
        if (out?.length) return out.forEach((c) => controller.enqueue(c));
        let item;
        try {
          item = await stream.next();
        } catch (err) {
          if (done) return;
          done = true;
          return controller.error(err);
        }
        if (done) return;
        if (item.done) {
          done = true;
          return controller.close();
        }
        const chunks = mapper.map(item.value, stream.message);
        if (chunks.length) return chunks.forEach((c) => controller.enqueue(c));
      }
    },
    cancel() {
      done = true;
      stream.close();
    },
  });
}

const textOfMessage = (m) => (m?.parts ?? []).filter((p) => p.type === 'text').map((p) => p.text).join('\n');

/**
 * `ChatTransport` of the AI SDK (ai 5) over a chatstream client.
 *
 * - The chat id is the conversation id. A chat id the server does not know
 *   (useChat makes one up) starts a new conversation on its first message;
 *   the transport remembers the pairing (`conversationIdOf`), and
 *   `onConversation(chatId, conversationId)` lets the app store it.
 * - Only the last user message is sent (its text parts joined with "\n"):
 *   the server keeps the history, as on /api/chat.
 * - `regenerate-message` is `mutate regenerate` of that message (for
 *   `regenerate()` without an id, of the answer after the kept history).
 * - An abort (useChat's `stop()`) cancels the generation (`cancelOnAbort`,
 *   default true); with false it only stops reading, as /api/chat does.
 * - `reconnectToStream` replays the chat's running answer from its start,
 *   or resolves null when nothing runs.
 */
export class WebSocketChatTransport {
  #conversations = new Map();

  constructor({ client, cancelOnAbort = true, onConversation, conversations } = {}) {
    if (!client) throw new TypeError('WebSocketChatTransport: `client` (from connect()) is required');
    this.client = client;
    this.cancelOnAbort = cancelOnAbort;
    this.onConversation = onConversation;
    for (const [chat, conv] of Object.entries(conversations ?? {})) this.#conversations.set(chat, conv);
  }

  /** The server's conversation id of a chat (the chat id itself until a first message mapped it). */
  conversationIdOf(chatId) {
    return this.#conversations.get(chatId) ?? chatId;
  }

  #remember(chatId, conversationId) {
    if (!conversationId || this.#conversations.get(chatId) === conversationId) return;
    this.#conversations.set(chatId, conversationId);
    this.onConversation?.(chatId, conversationId);
  }

  async sendMessages({ trigger, chatId, messageId, messages, abortSignal, body }) {
    let stream;
    if (trigger === 'regenerate-message') {
      const known = messageId && this.client.messages.get(messageId)?.role === 'assistant';
      // Chat.regenerate() without an id (the last answer), or from a user
      // message: the answer to replace is the server's first answer after
      // the history the Chat kept (its messages map 1:1 onto the conversation's).
      const target = known ? messageId : await this.#answerAfter(this.conversationIdOf(chatId), messages?.length ?? 0);
      stream = this.client.regenerate(target);
      const result = await stream.ack;
      this.#remember(chatId, result?.conversationId);
    } else {
      const last = messages?.at(-1);
      if (!last || last.role !== 'user') throw new Error('the last message must be a user message');
      const request = { content: textOfMessage(last) };
      if (body?.model) request.model = body.model;
      const known = this.#conversations.get(chatId);
      stream = this.client.generate({ ...request, conversationId: known ?? chatId });
      try {
        await stream.ack;
      } catch (err) {
        if (known || err.code !== 'not_found') throw err;
        // A chat id the server has never seen: its first message creates the conversation.
        stream = this.client.generate(request);
      }
      const ack = await stream.ack;
      this.#remember(chatId, ack.conversationId);
    }
    return toUIMessageStream(stream, { abortSignal, onAbort: this.cancelOnAbort ? () => stream.cancel().catch(() => {}) : null });
  }

  async #listMessages(conversationId) {
    let rows = [];
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const data = await this.client.query('listMessages', cursor ? { conversationId, limit: 500, cursor } : { conversationId, limit: 500 });
      rows = rows.concat(data?.messages ?? []);
      cursor = data?.nextCursor;
      if (!cursor) break;
    }
    return rows;
  }

  async #answerAfter(conversationId, kept) {
    const rows = await this.#listMessages(conversationId);
    const answer = rows.slice(kept).find((r) => r.role === 'assistant') ?? rows.findLast((r) => r.role === 'assistant');
    if (!answer) throw new Error('regenerate: the conversation has no answer to replace');
    return answer.id;
  }

  async reconnectToStream({ chatId, abortSignal }) {
    const conversationId = this.conversationIdOf(chatId);
    let running = null;
    for (const m of this.client.messages.values()) {
      if (m.conversationId === conversationId && m.role === 'assistant' && !isTerminal(m.status) && this.client.isFollowing(m.id)) running = m.id;
    }
    if (!running) {
      try {
        for (const row of await this.#listMessages(conversationId)) if (row.role === 'assistant' && !isTerminal(row.status)) running = row.id;
      } catch (err) {
        if (err.code === 'not_found') return null; // no such chat (or someone else's): nothing runs
        throw err;
      }
    }
    if (!running) return null;
    const stream = this.client.subscribe(running);
    if (stream.message && isTerminal(stream.message.status)) return null;
    return toUIMessageStream(stream, { abortSignal });
  }
}
