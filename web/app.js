// The chat page: wires the DOM to the protocol client and the message state.
// Pure logic lives in offsets.js / reducer.js / resume.js / protocol.js.
import { ChatClient, buildWsUrl, defaultWsBase, fetchFile, fileUrl, needsAuthHeader, uploadFile } from './protocol.js';
import { createMessage, isTerminal, mergeMessage, needsSubscription, reduceMessage, withToolCallRows } from './reducer.js';
import { InflightStore } from './resume.js';
import { renderConversationList, renderMessage } from './render.js';

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'),
  account: $('account'),
  accountForm: $('account-form'),
  user: $('account-user'),
  token: $('account-token'),
  newChat: $('new-chat'),
  conversations: $('conversations'),
  conversationsEmpty: $('conversations-empty'),
  title: $('chat-title'),
  chatActions: $('chat-actions'),
  pinChat: $('pin-chat'),
  renameChat: $('rename-chat'),
  deleteChat: $('delete-chat'),
  errors: $('errors'),
  messages: $('messages'),
  empty: $('empty'),
  announce: $('announce'),
  composer: $('composer'),
  input: $('composer-input'),
  send: $('send'),
  stop: $('stop'),
  attach: $('attach'),
  attachInput: $('attach-input'),
  pendingFiles: $('pending-files'),
};

const state = {
  auth: { user: '', token: '' },
  wsUrl: '',
  client: null,
  inflight: null,
  conversations: [],
  currentId: null, // open conversation, null for a new chat
  order: [], // message ids of the open conversation, oldest first
  messages: new Map(), // id -> message state (any conversation)
  els: new Map(), // id -> <article> of the open conversation
  subscribed: new Set(), // message ids subscribed on the current socket
  resetOnce: new Set(), // messages re-read from offset 0 after a refused fromOffset
  lastResync: new Map(),
  dirty: new Set(),
  frame: 0,
  loadSeq: 0,
  localSeq: 0,
  stopping: new Set(),
  persistDirty: new Set(),
  persistTimer: 0,
  listTimer: 0,
  ownRequests: 0, // generate/regenerate/retry awaiting their reply: their own `changed` inserts are skipped
  pendingFiles: [], // {key, name, size, uploading, error?, attachment?} shown above the message box
};

// ---------------------------------------------------------------- auth / connection

function readAuth() {
  const params = new URLSearchParams(location.search);
  const auth = {
    user: params.get('user') ?? localStorage.getItem('chatstream.user') ?? '',
    token: params.get('token') ?? sessionStorage.getItem('chatstream.token') ?? '',
  };
  if (params.has('token')) {
    // Keep a token out of the address bar and the history.
    sessionStorage.setItem('chatstream.token', auth.token);
    params.delete('token');
    history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}${location.hash}`);
  }
  return auth;
}

function identity(auth) {
  return auth.token ? `t:${auth.token.slice(-16)}` : `u:${auth.user || 'local'}`;
}

function connect() {
  state.client?.close();
  const params = new URLSearchParams(location.search);
  state.wsUrl = buildWsUrl({ base: params.get('ws') || defaultWsBase(location), ...state.auth });
  for (const e of fileObjects.values()) if (e.url) URL.revokeObjectURL(e.url);
  fileObjects.clear(); // another user's bytes must not stay linked
  state.inflight = new InflightStore(sessionStorage, identity(state.auth));
  state.client = new ChatClient({ url: state.wsUrl, onEvent, onStatus, onOpen });
  state.client.connect();
}

function onStatus(s) {
  const who = state.auth.token ? 'token user' : state.auth.user || 'local';
  let text;
  let shown = s.state;
  switch (s.state) {
    case 'connecting':
      text = s.attempt > 0 ? 'Reconnecting…' : 'Connecting…';
      break;
    case 'open':
      text = `Connected as ${who}`;
      break;
    case 'waiting': {
      const secs = Math.max(1, Math.round(s.retryInMs / 1000));
      if (!s.everOpened && s.attempt >= 2) {
        shown = 'failed';
        text = `Cannot connect (server down, or user/token refused); retrying in ${secs} s`;
      } else {
        text = `Disconnected; retrying in ${secs} s`;
      }
      break;
    }
    default:
      text = 'Disconnected';
  }
  ui.conn.textContent = text;
  ui.conn.dataset.state = shown;
  updateComposer();
}

function onOpen() {
  state.subscribed.clear();
  // Live sync with the user's other tabs and devices (`changed` events).
  state.client.request({ type: 'watch' }).catch((e) => e.code !== 'disconnected' && showError(e.code, e.message));
  refreshConversations();
  // Messages that were streaming when the page was reloaded or the socket dropped.
  for (const r of Object.values(state.inflight.load())) {
    if (!state.messages.has(r.messageId)) {
      state.messages.set(r.messageId, createMessage({ id: r.messageId, conversationId: r.conversationId, role: 'assistant', status: 'generating', text: r.text }));
    }
  }
  for (const m of state.messages.values()) {
    if (needsSubscription(m) && m.conversationId !== state.currentId) ensureSubscribed(m);
  }
  // The open conversation is re-read (history may have moved on), then its
  // unfinished messages are subscribed from the text we already have.
  openConversation(state.currentId, { keepScroll: true });
}

function ensureSubscribed(m) {
  if (state.subscribed.has(m.id) || !state.client?.isOpen) return;
  state.subscribed.add(m.id);
  state.client.subscribe(m.id, m.text.length);
}

// ---------------------------------------------------------------- events

function onEvent(ev, request) {
  if (ev.type === 'error') return onError(ev, request);
  if (ev.type === 'changed') return onChanged(ev);
  if (!ev.messageId) return;

  const before = state.messages.get(ev.messageId) ?? createMessage({ id: ev.messageId, conversationId: ev.conversationId, role: 'assistant' });
  const after = reduceMessage(before, ev);
  state.messages.set(after.id, after);

  if (after.gap && !before.gap) resync(after);
  if (after.conversationId === state.currentId && !state.order.includes(after.id)) state.order.push(after.id);

  if (isTerminal(after.status)) {
    state.inflight.remove(after.id);
    state.persistDirty.delete(after.id);
    state.subscribed.delete(after.id); // the server drops finished subscriptions
    state.stopping.delete(after.id);
    if (!isTerminal(before.status)) {
      if (after.conversationId === state.currentId) announce(after.status === 'complete' ? 'Response complete' : `Response ${after.status}`);
      scheduleListRefresh();
    }
  } else {
    schedulePersist(after.id);
    if (ev.type === 'start' && before.status !== 'generating' && after.conversationId === state.currentId) announce('Assistant is responding');
  }
  markDirty(after.id);
}

// A committed change from any socket of this user (watch). Conversation
// deltas are applied at once and the list is re-read to stay exact; message
// inserts in the open conversation appear (and stream, via subscribe), deletes
// disappear. Our own requests' inserts are left to their ack/result.
function onChanged(ev) {
  if (ev.entity === 'conversation') {
    if (ev.op === 'delete') {
      state.conversations = state.conversations.filter((c) => c.id !== ev.id);
      if (ev.id === state.currentId) openConversation(null);
    } else if (ev.op === 'update' && ev.data) {
      const c = state.conversations.find((x) => x.id === ev.id);
      if (c) Object.assign(c, ev.data);
    }
    renderList();
    return scheduleListRefresh();
  }
  if (ev.entity !== 'message') return;
  if (ev.op === 'delete') return removeMessage(ev.id);
  if (ev.conversationId !== state.currentId) return scheduleListRefresh();
  if (ev.op === 'insert' && ev.data && state.ownRequests === 0 && !state.order.includes(ev.id)) {
    const m = mergeMessage(state.messages.get(ev.id), ev.data);
    state.messages.set(m.id, m);
    state.order.push(m.id);
    if (needsSubscription(m)) ensureSubscribed(m);
    else loadAttachments(m.id, state.loadSeq);
    markDirty(m.id);
  } else if (ev.op === 'update' && ev.data?.status) {
    // Finished elsewhere while we were not subscribed: fetch the final state.
    const m = state.messages.get(ev.id);
    if (m && !isTerminal(m.status) && isTerminal(ev.data.status) && !state.subscribed.has(m.id)) ensureSubscribed(m);
  }
}

function removeMessage(id) {
  state.order = state.order.filter((x) => x !== id);
  state.els.get(id)?.remove();
  state.els.delete(id);
  state.messages.delete(id);
  state.inflight.remove(id);
  render();
}

// A delta arrived past our end: some text was lost; ask again from what we have.
function resync(m) {
  const now = Date.now();
  if (now - (state.lastResync.get(m.id) ?? 0) < 2000) return;
  state.lastResync.set(m.id, now);
  state.subscribed.delete(m.id);
  ensureSubscribed(m);
}

function onError(ev, request) {
  const id = request?.messageId ?? ev.messageId;
  if (request?.type === 'subscribe') {
    state.subscribed.delete(id);
    const m = state.messages.get(id);
    if (ev.code === 'bad_request' && request.fromOffset > 0 && m && !state.resetOnce.has(id)) {
      // We hold more text than the server (e.g. it restarted and kept its
      // last flush): take the server's text from the start.
      state.resetOnce.add(id);
      state.messages.set(id, { ...m, text: '' });
      ensureSubscribed(state.messages.get(id));
      return;
    }
    if (ev.code === 'not_found') {
      state.inflight.remove(id);
      if (m && !isTerminal(m.status)) state.messages.set(id, { ...m, status: 'error', error: 'message not found' });
      markDirty(id);
    }
  } else if (request?.type === 'cancel') {
    state.stopping.delete(id);
    if (ev.code === 'conflict' || ev.code === 'not_found') {
      // Not running any more: fetch its final state instead of complaining.
      const m = state.messages.get(id);
      if (m) {
        state.subscribed.delete(id);
        ensureSubscribed(m);
      }
      updateComposer();
      return;
    }
  } else if (id && state.messages.has(id)) {
    onEventForMessage(ev);
  }
  showError(ev.code, ev.message);
}

function onEventForMessage(ev) {
  const m = state.messages.get(ev.messageId);
  const after = reduceMessage(m, ev);
  if (after === m) return;
  state.messages.set(after.id, after);
  if (isTerminal(after.status)) state.inflight.remove(after.id);
  markDirty(after.id);
}

function schedulePersist(id) {
  state.persistDirty.add(id);
  if (!state.persistTimer) state.persistTimer = setTimeout(flushPersist, 250);
}

function flushPersist() {
  clearTimeout(state.persistTimer);
  state.persistTimer = 0;
  for (const id of state.persistDirty) {
    const m = state.messages.get(id);
    if (m && !isTerminal(m.status)) state.inflight.save(m);
  }
  state.persistDirty.clear();
}

// ---------------------------------------------------------------- queries

async function refreshConversations() {
  try {
    const data = await state.client.query('listConversations', { limit: 200 });
    state.conversations = data?.conversations ?? [];
    renderList();
  } catch (e) {
    if (e.code !== 'disconnected') showError(e.code, e.message);
  }
}

function scheduleListRefresh() {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(refreshConversations, 300);
}

async function openConversation(id, { keepScroll = false } = {}) {
  const seq = ++state.loadSeq;
  const switching = id !== state.currentId;
  state.currentId = id;
  if (switching) {
    state.order = [];
    state.els.clear();
    ui.messages.replaceChildren(ui.empty);
  }
  setHash(id);
  renderList();
  renderTitle();
  updateComposer();
  if (!id) {
    render();
    return;
  }
  if (!state.client?.isOpen) return;

  let rows = [];
  try {
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const data = await state.client.query('listMessages', cursor ? { conversationId: id, limit: 500, cursor } : { conversationId: id, limit: 500 });
      rows = rows.concat(data?.messages ?? []);
      cursor = data?.nextCursor;
      if (!cursor) break;
    }
  } catch (e) {
    if (seq !== state.loadSeq) return;
    if (e.code === 'not_found') {
      showError(e.code, 'That conversation does not exist (or belongs to another user).');
      openConversation(null);
    } else if (e.code !== 'disconnected') {
      showError(e.code, e.message);
    }
    return;
  }
  if (seq !== state.loadSeq) return;

  const ids = [];
  for (const row of rows) {
    state.messages.set(row.id, mergeMessage(state.messages.get(row.id), row));
    ids.push(row.id);
  }
  // Keep what is only in memory so far (a just-sent message, a stream whose row is not visible yet).
  for (const mid of state.order) if (!ids.includes(mid) && state.messages.get(mid)?.conversationId === id) ids.push(mid);
  for (const m of state.messages.values()) if (m.conversationId === id && needsSubscription(m) && !ids.includes(m.id)) ids.push(m.id);
  state.order = ids;
  for (const mid of ids) state.dirty.add(mid);
  render(!keepScroll);

  for (const mid of ids) {
    const m = state.messages.get(mid);
    if (!m || mid.startsWith('local-')) continue;
    if (needsSubscription(m)) ensureSubscribed(m);
    if (m.role === 'assistant') loadToolCalls(mid, !isTerminal(m.status), seq);
    loadAttachments(mid, seq);
  }
}

async function loadToolCalls(messageId, includePartial, seq) {
  try {
    const rows = await state.client.query('getToolCalls', { messageId, includePartial });
    if (!rows?.length) return;
    state.messages.set(messageId, withToolCallRows(state.messages.get(messageId), rows));
    if (seq === state.loadSeq) markDirty(messageId);
  } catch (e) {
    if (e.code !== 'disconnected') showError(e.code, e.message);
  }
}

async function loadAttachments(messageId, seq) {
  try {
    const rows = await state.client.query('getAttachments', { messageId });
    if (!rows?.length) return;
    state.messages.set(messageId, { ...state.messages.get(messageId), attachments: rows });
    if (seq === state.loadSeq) markDirty(messageId);
  } catch (e) {
    if (e.code !== 'disconnected') showError(e.code, e.message);
  }
}

// ---------------------------------------------------------------- actions

function inflightInView() {
  for (let i = state.order.length - 1; i >= 0; i--) {
    const m = state.messages.get(state.order[i]);
    if (m && (m.status === 'sending' || needsSubscription(m))) return m;
  }
  return null;
}

async function sendMessage(content) {
  if (!state.client?.isOpen) return showError('disconnected', 'Not connected to the server.');
  if (inflightInView()) return;
  const seq = state.loadSeq;
  const conversationId = state.currentId;
  const localId = `local-${++state.localSeq}`;
  if (state.pendingFiles.some((f) => f.uploading)) return showError('uploading', 'Wait for the files to finish uploading.');
  const attachments = state.pendingFiles.filter((f) => f.attachment).map((f) => f.attachment);
  state.messages.set(localId, createMessage({ id: localId, conversationId, role: 'user', text: content, status: 'sending', attachments }));
  state.order.push(localId);
  markDirty(localId);
  ui.input.value = '';
  updateComposer();

  let ack;
  try {
    const frame = conversationId ? { type: 'generate', conversationId, content } : { type: 'generate', content };
    if (attachments.length) frame.attachments = attachments;
    ack = await state.client.request(frame);
  } catch (e) {
    const m = state.messages.get(localId);
    state.messages.set(localId, { ...m, status: 'failed', error: `${e.code}: ${e.message}` });
    markDirty(localId);
    if (!ui.input.value) ui.input.value = content;
    showError(e.code, e.message);
    updateComposer();
    return;
  }

  state.pendingFiles = [];
  renderPendingFiles();
  // The local user message becomes the stored one.
  const user = { ...state.messages.get(localId), id: ack.userMessageId, conversationId: ack.conversationId, status: 'complete' };
  state.messages.delete(localId);
  state.messages.set(user.id, user);
  const el = state.els.get(localId);
  state.els.delete(localId);
  if (el) state.els.set(user.id, el);

  const assistant = state.messages.get(ack.messageId) ?? createMessage({ id: ack.messageId, conversationId: ack.conversationId, role: 'assistant', status: 'pending' });
  state.messages.set(assistant.id, assistant);
  state.subscribed.add(assistant.id); // the requester is subscribed by the server
  state.inflight.save(assistant);

  if (seq === state.loadSeq && (state.currentId === conversationId || state.currentId === null)) {
    state.currentId = ack.conversationId;
    setHash(ack.conversationId);
    const i = state.order.indexOf(localId);
    if (i >= 0) state.order[i] = user.id;
    if (!state.order.includes(assistant.id)) state.order.push(assistant.id);
    markDirty(user.id);
    markDirty(assistant.id);
  }
  if (!conversationId) refreshConversations();
  updateComposer();
}

function stop() {
  const m = inflightInView();
  if (!m || m.role !== 'assistant') return;
  state.stopping.add(m.id);
  state.client.cancel(m.id);
  updateComposer();
}

// ---------------------------------------------------------------- lifecycle (mutate)

async function mutate(name, args) {
  try {
    return await state.client.request({ type: 'mutate', name, args });
  } catch (e) {
    showError(e.code, e.message);
    return null;
  }
}

// regenerate / retry: the old answer and everything after it go; the new
// answer streams to this socket (the server subscribes the requester).
async function replaceAnswer(name, messageId) {
  state.ownRequests++;
  let data;
  try {
    data = await mutate(name, { messageId });
  } finally {
    state.ownRequests--;
  }
  if (!data) return;
  for (const id of data.removedMessageIds ?? []) removeMessage(id);
  const m = state.messages.get(data.messageId) ?? createMessage({ id: data.messageId, conversationId: data.conversationId, role: 'assistant', status: 'pending' });
  state.messages.set(m.id, m);
  state.subscribed.add(m.id);
  state.inflight.save(m);
  if (data.conversationId === state.currentId && !state.order.includes(m.id)) state.order.push(m.id);
  markDirty(m.id);
  updateComposer();
}

async function onMessageAction(action, messageId) {
  if (!state.client?.isOpen) return showError('disconnected', 'Not connected to the server.');
  if (action === 'regenerate' || action === 'retry') return replaceAnswer(action, messageId);
  if (action === 'branch') {
    const c = await mutate('branch', { messageId });
    if (!c) return;
    state.conversations = [c, ...state.conversations.filter((x) => x.id !== c.id)];
    announce('Branched into a new conversation');
    return openConversation(c.id);
  }
  if (action === 'delete') {
    if (await mutate('deleteMessage', { messageId })) removeMessage(messageId);
  }
}

async function updateCurrent(fields) {
  const id = state.currentId;
  if (!id) return;
  const c = await mutate('updateConversation', { conversationId: id, ...fields });
  if (!c) return;
  state.conversations = state.conversations.map((x) => (x.id === c.id ? c : x));
  renderList();
}

// ---------------------------------------------------------------- rendering

function markDirty(id) {
  if (!state.order.includes(id)) return;
  state.dirty.add(id);
  if (!state.frame) state.frame = requestAnimationFrame(() => render());
}

// With a token, an attachment's link is an object URL of bytes fetched with
// an Authorization header, so the token never appears in a link (issue 20).
// Until the fetch completes the attachment shows as a plain chip.
const fileObjects = new Map(); // storageId -> { url: string | null, waiting: Set<messageId> }
function attachmentUrl(storageId, messageId) {
  if (!needsAuthHeader(state.wsUrl)) return fileUrl(state.wsUrl, storageId);
  let entry = fileObjects.get(storageId);
  if (!entry) {
    entry = { url: null, waiting: new Set() };
    fileObjects.set(storageId, entry);
    fetchFile(state.wsUrl, storageId)
      .then((blob) => {
        entry.url = URL.createObjectURL(blob);
        for (const mid of entry.waiting) markDirty(mid);
        entry.waiting.clear();
      })
      .catch(() => entry.waiting.clear()); // gone or refused: stays a plain chip
  }
  if (!entry.url) entry.waiting.add(messageId);
  return entry.url;
}

function render(forceScroll = false) {
  cancelAnimationFrame(state.frame);
  state.frame = 0;
  const box = ui.messages;
  const atBottom = forceScroll || box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  for (const id of state.dirty) {
    const m = state.messages.get(id);
    if (!m) continue;
    const ctx = { urlFor: (storageId) => attachmentUrl(storageId, id) };
    state.els.set(id, renderMessage(document, state.els.get(id), m, ctx));
  }
  state.dirty.clear();
  const nodes = state.order.map((id) => state.els.get(id)).filter(Boolean);
  const current = [...box.children].filter((n) => n !== ui.empty);
  if (current.length !== nodes.length || nodes.some((n, i) => current[i] !== n)) box.replaceChildren(ui.empty, ...nodes);
  ui.empty.hidden = nodes.length > 0;
  if (atBottom) box.scrollTop = box.scrollHeight;
  updateComposer();
}

function renderList() {
  renderConversationList(ui.conversations, state.conversations, state.currentId, (id) => openConversation(id));
  ui.conversationsEmpty.hidden = state.conversations.length > 0;
  renderTitle();
}

function renderTitle() {
  const c = state.conversations.find((x) => x.id === state.currentId);
  const title = state.currentId ? c?.title ?? 'Conversation' : 'New chat';
  ui.title.textContent = title;
  document.title = `${title} · chatstream`;
  ui.chatActions.hidden = !c;
  ui.pinChat.textContent = c?.pinned ? 'Unpin' : 'Pin';
  ui.pinChat.setAttribute('aria-pressed', c?.pinned ? 'true' : 'false');
}

function updateComposer() {
  const open = Boolean(state.client?.isOpen);
  const busy = inflightInView();
  ui.send.disabled = !open || Boolean(busy);
  ui.stop.hidden = !(busy && busy.role === 'assistant');
  ui.stop.disabled = !open || (busy && state.stopping.has(busy.id));
  ui.stop.textContent = busy && state.stopping.has(busy.id) ? 'Stopping…' : 'Stop';
}

function announce(text) {
  ui.announce.textContent = text;
}

function showError(code, message) {
  const banner = document.createElement('div');
  banner.className = 'error-banner';
  const c = document.createElement('code');
  c.textContent = code ?? 'error';
  const msg = document.createElement('span');
  msg.textContent = message ?? '';
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.setAttribute('aria-label', 'Dismiss error');
  close.addEventListener('click', () => banner.remove());
  banner.append(c, msg, close);
  ui.errors.append(banner);
  while (ui.errors.children.length > 4) ui.errors.firstElementChild.remove();
  setTimeout(() => banner.remove(), 20000);
}

// ---------------------------------------------------------------- URL state

function hashConversation() {
  const m = /^#c=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function setHash(id) {
  const want = id ? `#c=${encodeURIComponent(id)}` : '';
  if (location.hash !== want) history.replaceState(null, '', `${location.pathname}${location.search}${want}`);
}

// ---------------------------------------------------------------- wiring

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const content = ui.input.value.trim();
  if (content) sendMessage(content);
});
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composer.requestSubmit();
  }
});
ui.stop.addEventListener('click', stop);
ui.messages.addEventListener('click', (e) => {
  const b = e.target.closest?.('button[data-action]');
  if (b) onMessageAction(b.dataset.action, b.dataset.id);
});
ui.pinChat.addEventListener('click', () => {
  const c = state.conversations.find((x) => x.id === state.currentId);
  if (c) updateCurrent({ pinned: !c.pinned });
});
ui.renameChat.addEventListener('click', () => {
  const c = state.conversations.find((x) => x.id === state.currentId);
  const title = prompt('Rename conversation', c?.title ?? '')?.trim();
  if (title) updateCurrent({ title });
});
ui.deleteChat.addEventListener('click', async () => {
  const id = state.currentId;
  if (!id || !confirm('Delete this conversation and all its messages?')) return;
  if (await mutate('deleteConversation', { conversationId: id })) {
    state.conversations = state.conversations.filter((c) => c.id !== id);
    openConversation(null);
  }
});

// ---------------------------------------------------------------- attachments (POST /api/files)

function renderPendingFiles() {
  ui.pendingFiles.replaceChildren(
    ...state.pendingFiles.map((f) => {
      const li = document.createElement('li');
      li.className = `attachment${f.uploading ? ' uploading' : ''}`;
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.textContent = f.error ? `⚠ ${f.name}: ${f.error}` : `📎 ${f.name}${f.uploading ? ' (uploading…)' : ''}`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '×';
      remove.setAttribute('aria-label', `Remove ${f.name}`);
      remove.addEventListener('click', () => {
        state.pendingFiles = state.pendingFiles.filter((p) => p !== f);
        renderPendingFiles();
      });
      chip.append(remove);
      li.append(chip);
      return li;
    }),
  );
  ui.pendingFiles.hidden = state.pendingFiles.length === 0;
}

async function attachFiles(files) {
  for (const file of files) {
    const entry = { key: `${file.name}-${file.size}-${Math.random()}`, name: file.name, size: file.size, uploading: true };
    state.pendingFiles.push(entry);
    renderPendingFiles();
    try {
      const r = await uploadFile(state.wsUrl, file);
      entry.attachment = { type: r.type, name: r.name, storageId: r.storageId, mimeType: r.mimeType, size: r.size, metadata: r.metadata };
    } catch (e) {
      entry.error = e.message;
    }
    entry.uploading = false;
    renderPendingFiles();
  }
}

ui.attach.addEventListener('click', () => ui.attachInput.click());
ui.attachInput.addEventListener('change', () => {
  attachFiles([...ui.attachInput.files]);
  ui.attachInput.value = '';
});
ui.newChat.addEventListener('click', () => {
  openConversation(null);
  ui.input.focus();
});
ui.accountForm.addEventListener('submit', (e) => {
  e.preventDefault();
  state.auth = { user: ui.user.value.trim(), token: ui.token.value.trim() };
  localStorage.setItem('chatstream.user', state.auth.user);
  if (state.auth.token) sessionStorage.setItem('chatstream.token', state.auth.token);
  else sessionStorage.removeItem('chatstream.token');
  const params = new URLSearchParams(location.search);
  if (params.has('user')) {
    params.set('user', state.auth.user);
    history.replaceState(null, '', `${location.pathname}?${params}`);
  }
  ui.account.open = false;
  // Another user: nothing of the previous one stays on screen.
  state.messages.clear();
  state.conversations = [];
  state.currentId = null;
  state.order = [];
  state.els.clear();
  ui.messages.replaceChildren(ui.empty);
  renderList();
  setHash(null);
  connect();
});
window.addEventListener('hashchange', () => {
  const id = hashConversation();
  if (id !== state.currentId) openConversation(id);
});
window.addEventListener('pagehide', flushPersist);
window.addEventListener('online', () => state.client?.reconnectNow());

// Exposed for debugging from the console and for tests/web/ui_smoke.mjs.
globalThis.__chatstream = state;

state.auth = readAuth();
ui.user.value = state.auth.user;
ui.token.value = state.auth.token;
state.currentId = hashConversation();
renderList();
render();
connect();
