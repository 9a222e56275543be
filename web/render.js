// DOM rendering of conversations and messages. All user and model data goes
// through textContent / Text nodes / attributes, never innerHTML.
import { answerSpeed, isTerminal, isToolCallPending, segment } from './client/index.js';

function el(doc, tag, attrs = {}, ...children) {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatWhen(ms, now = Date.now()) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  if (now - ms < 24 * 3600 * 1000 && new Date(now).getDate() === d.getDate()) {
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function pretty(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/** Conversation list: one button per conversation; the open one has aria-current. */
export function renderConversationList(ul, conversations, currentId, onSelect) {
  const doc = ul.ownerDocument;
  // Pinned first, each group in the server's order (most recently updated first).
  const ordered = [...conversations.filter((c) => c.pinned), ...conversations.filter((c) => !c.pinned)];
  const items = ordered.map((c) => {
    const button = el(
      doc,
      'button',
      { type: 'button', class: 'conv', 'data-id': c.id, 'aria-current': c.id === currentId ? 'page' : null },
      c.pinned ? el(doc, 'span', { class: 'conv-pin', 'aria-label': 'pinned', text: '📌' }) : null,
      el(doc, 'span', { class: 'conv-title', text: c.title || 'New Chat' }),
      el(doc, 'span', { class: 'conv-meta', text: formatWhen(c.lastMessageAt ?? c.updatedAt) }),
    );
    button.addEventListener('click', () => onSelect(c.id));
    return el(doc, 'li', {}, button);
  });
  ul.replaceChildren(...items);
}

const STATE_LABEL = {
  'input-streaming': 'preparing…',
  'input-available': 'running…',
  'output-available': 'done',
  'output-error': 'failed',
};

/** Builds or updates the element of one tool call. */
export function renderToolCall(doc, existing, call, msg) {
  const pending = isToolCallPending(call, msg);
  let state = call.state;
  if (!pending && (state === 'input-streaming' || state === 'input-available')) state = 'no-result';
  const key = JSON.stringify([state, call.name, call.inputText, call.output, call.errorText, call.textPosition, pending]);
  if (existing && existing.dataset.key === key) return existing;

  const box = existing ?? el(doc, 'div', { class: 'tool', role: 'group' });
  box.dataset.key = key;
  box.dataset.toolCallId = call.id;
  box.dataset.state = state;
  if (call.textPosition != null) box.dataset.textPosition = String(call.textPosition);
  box.className = `tool tool-${state}`;
  box.setAttribute('aria-label', `Tool call ${call.name ?? 'tool'}: ${STATE_LABEL[state] ?? 'no result'}`);
  box.setAttribute('aria-busy', pending ? 'true' : 'false');

  const head = el(
    doc,
    'div',
    { class: 'tool-head' },
    pending ? el(doc, 'span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
    el(doc, 'span', { class: 'tool-icon', 'aria-hidden': 'true', text: state === 'output-error' ? '⚠' : '⚙' }),
    el(doc, 'code', { class: 'tool-name', text: call.name ?? 'tool' }),
    el(doc, 'span', { class: 'tool-state', text: STATE_LABEL[state] ?? 'no result' }),
  );
  const args = call.input !== undefined ? pretty(call.input) : call.inputText;
  const parts = [head, el(doc, 'div', { class: 'tool-label', text: 'Arguments' }), el(doc, 'pre', { class: 'tool-args', text: args || '{}' })];
  if (state === 'output-error') {
    parts.push(el(doc, 'div', { class: 'tool-label', text: 'Error' }), el(doc, 'pre', { class: 'tool-error', text: call.errorText ?? '' }));
  } else if (state === 'output-available') {
    parts.push(el(doc, 'div', { class: 'tool-label', text: 'Result' }), el(doc, 'pre', { class: 'tool-result', text: pretty(call.output) }));
  }
  box.replaceChildren(...parts);
  return box;
}

function attachmentItem(doc, a, url) {
  const label = `${a.name ?? 'file'}${a.size != null ? ` · ${formatBytes(a.size)}` : ''}`;
  const chip = () =>
    url
      ? el(doc, 'a', { class: 'chip', href: url, target: '_blank', rel: 'noopener', download: a.name ?? true }, el(doc, 'span', { 'aria-hidden': 'true', text: '📎 ' }), label)
      : el(doc, 'span', { class: 'chip' }, el(doc, 'span', { 'aria-hidden': 'true', text: '📎 ' }), label);
  const li = el(doc, 'li', { class: `attachment attachment-${a.type ?? 'file'}` });
  if (a.type === 'image' && url) {
    const img = el(doc, 'img', {
      src: url,
      alt: a.name ?? 'image',
      loading: 'lazy',
      width: a.metadata?.width,
      height: a.metadata?.height,
    });
    // The files API may not exist (yet) or the file may be gone: fall back to a chip.
    img.addEventListener('error', () => li.replaceChildren(chip()), { once: true });
    li.append(el(doc, 'a', { class: 'thumb', href: url, target: '_blank', rel: 'noopener', title: label }, img));
  } else {
    li.append(chip());
  }
  return li;
}

/** "420 ms", "1.35 s". */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** Updates a Text node to `text`, appending when it only grew (long streams stay cheap). */
function setText(node, text) {
  if (node.data === text) return;
  if (text.startsWith(node.data) && node.data.length > 0) node.appendData(text.slice(node.data.length));
  else node.data = text;
}

/**
 * The "Thinking" block (issue 22): open and live while the model thinks,
 * collapsed once the answer text starts (once: after that the reader opens
 * and closes it), closed for answers loaded from history.
 */
function renderThinking(doc, article, msg) {
  let box = article.querySelector('.thinking');
  const has = msg.role === 'assistant' && (msg.reasoning.length > 0 || msg.reasoningState === 'streaming');
  if (!has) {
    if (box) box.hidden = true;
    return;
  }
  if (!box) {
    box = el(doc, 'details', { class: 'thinking' }, el(doc, 'summary', { class: 'thinking-summary' }), el(doc, 'div', { class: 'thinking-text' }, doc.createTextNode('')));
    article.querySelector('.msg-body').before(box);
  }
  box.hidden = false;
  const live = msg.reasoningState === 'streaming' && !msg.text && !isTerminal(msg.status);
  const phase = live ? 'live' : 'done';
  if (box.dataset.phase !== phase) {
    if (live) box.open = true;
    else if (box.dataset.phase === 'live') box.open = false; // the answer started
    box.dataset.phase = phase;
  }
  box.setAttribute('aria-busy', live ? 'true' : 'false');
  const { thinkingMs } = answerSpeed(msg);
  const label = live ? 'Thinking…' : thinkingMs != null ? `Thought for ${formatDuration(thinkingMs)}` : 'Thinking';
  const summary = box.querySelector('summary');
  const key = `${label}|${live}`;
  if (summary.dataset.key !== key) {
    summary.dataset.key = key;
    summary.replaceChildren(...(live ? [el(doc, 'span', { class: 'spinner', 'aria-hidden': 'true' })] : []), label);
  }
  setText(box.querySelector('.thinking-text').firstChild, msg.reasoning);
}

/** Cited sources as links; only http(s) URLs become links. */
function renderSources(doc, article, msg) {
  let ol = article.querySelector('.sources');
  const key = JSON.stringify(msg.sources ?? []);
  if (ol?.dataset.key === key) return;
  if (!ol) {
    ol = el(doc, 'ol', { class: 'sources', 'aria-label': 'Sources' });
    article.querySelector('.attachments').before(ol);
  }
  ol.dataset.key = key;
  ol.hidden = !(msg.sources ?? []).length;
  ol.replaceChildren(
    ...(msg.sources ?? []).map((s) => {
      const safe = /^https?:\/\//i.test(s.url ?? '');
      const label = s.title || s.url;
      return el(doc, 'li', { value: s.position }, safe ? el(doc, 'a', { href: s.url, target: '_blank', rel: 'noopener noreferrer', text: label }) : el(doc, 'span', { text: label }));
    }),
  );
}

const STATUS_LABEL = {
  pending: 'waiting…',
  generating: 'writing…',
  stopped: 'stopped',
  interrupted: 'interrupted',
  error: 'error',
  sending: 'sending…',
  failed: 'not sent',
};

/**
 * Builds or updates the <article> of one message. Text segments are Text
 * nodes (updated in place while streaming); tool calls are inserted between
 * them at their textPosition; elements are reused between updates.
 */
export function renderMessage(doc, article, msg, { urlFor }) {
  if (!article) {
    article = el(doc, 'article', { class: `msg msg-${msg.role}` });
    article._tools = new Map();
    article.append(
      el(doc, 'header', { class: 'msg-head' }, el(doc, 'span', { class: 'msg-role', text: msg.role === 'user' ? 'You' : msg.role === 'assistant' ? 'Assistant' : msg.role }), el(doc, 'span', { class: 'msg-status' })),
      el(doc, 'div', { class: 'msg-body' }),
      el(doc, 'ul', { class: 'attachments', 'aria-label': 'Attachments' }),
      el(doc, 'footer', { class: 'msg-foot' }),
      el(doc, 'div', { class: 'msg-actions' }),
    );
  }
  article.dataset.id = msg.id;
  const streaming = msg.role === 'assistant' && !isTerminal(msg.status);
  article.dataset.status = msg.status;
  article.setAttribute('aria-busy', streaming ? 'true' : 'false');
  article.setAttribute('aria-label', msg.role === 'user' ? 'Your message' : 'Assistant message');

  const status = article.querySelector('.msg-status');
  const label = msg.status === 'complete' ? '' : STATUS_LABEL[msg.status] ?? msg.status;
  if (status.textContent !== label) status.textContent = label;

  // Body: text nodes and tool call boxes in order.
  const body = article.querySelector('.msg-body');
  body.dataset.streaming = streaming ? 'true' : 'false';
  const oldTexts = [...body.childNodes].filter((n) => n.nodeType === 3);
  const seen = new Set();
  let t = 0;
  renderThinking(doc, article, msg);
  const nodes = segment(msg.text, msg.toolCalls).map((s) => {
    if (s.type === 'text') {
      const node = oldTexts[t++] ?? doc.createTextNode('');
      setText(node, s.text);
      return node;
    }
    seen.add(s.call.id);
    const box = renderToolCall(doc, article._tools.get(s.call.id), s.call, msg);
    article._tools.set(s.call.id, box);
    return box;
  });
  for (const id of [...article._tools.keys()]) if (!seen.has(id)) article._tools.delete(id);
  const current = body.childNodes;
  if (current.length !== nodes.length || nodes.some((n, i) => current[i] !== n)) body.replaceChildren(...nodes);

  renderSources(doc, article, msg);

  // Attachments.
  const ul = article.querySelector('.attachments');
  // urlFor may answer null until the bytes are fetched (a token is sent in a
  // header, not in a link): the URLs are part of the key, so the list is
  // rebuilt once they arrive.
  const urls = (msg.attachments ?? []).map((a) => (a.storageId ? urlFor(a.storageId) : null));
  const akey = JSON.stringify([msg.attachments ?? [], urls]);
  if (ul.dataset.key !== akey) {
    ul.dataset.key = akey;
    ul.replaceChildren(...(msg.attachments ?? []).map((a, i) => attachmentItem(doc, a, urls[i])));
    ul.hidden = !(msg.attachments ?? []).length;
  }

  // Footer: error text, token usage, and the answer's speed (issue 22):
  // time to first token and tokens per second, from the stored row.
  const foot = article.querySelector('.msg-foot');
  const bits = [];
  if (msg.error) bits.push(msg.error);
  const finished = msg.role === 'assistant' && isTerminal(msg.status);
  if (finished && msg.usage?.outputTokens != null) bits.push(`${msg.usage.outputTokens} tokens`);
  const speed = finished ? answerSpeed(msg) : { ttftMs: null, tokensPerSecond: null };
  if (speed.ttftMs != null) bits.push(`TTFT ${formatDuration(speed.ttftMs)}`);
  if (speed.tokensPerSecond != null) bits.push(`${speed.tokensPerSecond.toFixed(1)} tokens/s`);
  foot.dataset.ttftMs = speed.ttftMs ?? '';
  foot.dataset.tokensPerSecond = speed.tokensPerSecond ?? '';
  const ftext = bits.join(' · ');
  if (foot.textContent !== ftext) foot.textContent = ftext;
  foot.classList.toggle('msg-error', Boolean(msg.error));

  // Actions (app.js handles the clicks by data-action): only on stored, finished messages.
  const actions = article.querySelector('.msg-actions');
  const names = messageActions(msg);
  const nkey = names.join(',');
  if (actions.dataset.key !== nkey) {
    actions.dataset.key = nkey;
    actions.replaceChildren(...names.map((a) => el(doc, 'button', { type: 'button', 'data-action': a, 'data-id': msg.id, class: a === 'delete' ? 'danger' : null, text: ACTION_LABEL[a] })));
    actions.hidden = names.length === 0;
  }
  return article;
}

const ACTION_LABEL = { regenerate: 'Regenerate', retry: 'Retry', branch: 'Branch', delete: 'Delete' };

/** The mutations offered on a message (docs/design.md §6 `mutate`, docs/lifecycle.md). */
export function messageActions(msg) {
  if (!msg.id || msg.id.startsWith('local-') || !isTerminal(msg.status)) return [];
  if (msg.role !== 'assistant') return ['branch', 'delete'];
  return [msg.status === 'complete' ? 'regenerate' : 'retry', 'branch', 'delete'];
}
