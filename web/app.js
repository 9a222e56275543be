// The chat page: wires the DOM to the client package and the message state.
// The protocol, exact resume and the message reducer are @chatstream/client
// (clients/js/src, served under /client/); this file is the page only.
import {
  ChatstreamClient,
  InflightStore,
  buildWsUrl,
  createMessage,
  defaultWsBase,
  fetchFile,
  fileUrl,
  isTerminal,
  mergeMessage,
  needsAuthHeader,
  needsSubscription,
  uploadFile,
  withToolCallRows,
} from './client/index.js';
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
  client: null, // ChatstreamClient: follows unfinished messages and resumes them after a drop
  inflight: null,
  conversations: [],
  currentId: null, // open conversation, null for a new chat
  order: [], // message ids of the open conversation, oldest first
  messages: new Map(), // id -> message state (any conversation): the client's own map
  els: new Map(), // id -> <article> of the open conversation
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
  const base = params.get('ws') || defaultWsBase(location);
  state.wsUrl = buildWsUrl({ base, ...state.auth });
  for (const e of fileObjects.values()) if (e.url) URL.revokeObjectURL(e.url);
  fileObjects.clear(); // another user's bytes must not stay linked
  state.inflight = new InflightStore(sessionStorage, identity(state.auth));
  const client = new ChatstreamClient({ url: base, user: state.auth.user || undefined, token: state.auth.token || undefined });
  state.client = client;
  state.messages = client.messages; // one store: the client reduces events into it, the page merges history
  client.on('status', onStatus);
  client.on('open', onOpen);
  client.on('message', onMessage);
  client.on('error', onError);
  // Live sync with the user's other tabs and devices; sent again on every reconnect.
  client.watch({ onChange: onChanged });
  client.open();
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

// Every (re)connect. The client has already subscribed again, from the text
// it holds, every message it follows; the page re-reads what it shows.
function onOpen() {
  refreshConversations();
  // Messages that were streaming when the page was reloaded.
  for (const r of Object.values(state.inflight.load())) {
    if (!state.messages.has(r.messageId)) {
      const thinking = Boolean(r.reasoning) && !r.text;
      state.messages.set(
        r.messageId,
        createMessage({ id: r.messageId, conversationId: r.conversationId, role: 'assistant', status: 'generating', text: r.text, reasoning: r.reasoning, reasoningState: thinking ? 'streaming' : undefined }),
      );
    }
  }
  for (const m of state.messages.values()) {
    if (needsSubscription(m) && m.conversationId !== state.currentId) ensureSubscribed(m);
  }
  // The open conversation is re-read (history may have moved on), then its
  // unfinished messages are subscribed from the text we already have.
  openConversation(state.currentId, { keepScroll: true });
}

// The client follows the message (subscribes from the text and reasoning it
// holds, again after each reconnect, and re-asks after a gap) until it ends.
function ensureSubscribed(m) {
  if (!state.client || state.client.isFollowing(m.id)) return;
  state.client.subscribe(m);
}

// ---------------------------------------------------------------- events

// A message state changed (a stream event reduced by the client).
function onMessage(after, { before, event }) {
  if (after.conversationId === state.currentId && !state.order.includes(after.id)) state.order.push(after.id);
  if (isTerminal(after.status)) {
    state.inflight.remove(after.id);
    state.persistDirty.delete(after.id);
    state.stopping.delete(after.id);
    if (before && !isTerminal(before.status)) {
      if (after.conversationId === state.currentId) announce(after.status === 'complete' ? 'Response complete' : `Response ${after.status}`);
      scheduleListRefresh();
      if (after.role === 'assistant') loadTiming(after.id);
    }
  } else {
    schedulePersist(after.id);
    if (event?.type === 'start' && before?.status !== 'generating' && after.conversationId === state.currentId) announce('Assistant is responding');
  }
  markDirty(after.id);
}

// TTFT and tokens/s are in the stored row once the answer is final (finish does not carry them).
async function loadTiming(messageId) {
  try {
    const row = await state.client.query('getMessage', { messageId });
    const m = state.messages.get(messageId);
    if (!m || !row) return;
    state.messages.set(messageId, mergeMessage(m, row));
    markDirty(messageId);
  } catch (e) {
    if (e.code !== 'disconnected' && e.code !== 'not_found') showError(e.code, e.message);
  }
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
    if (m && !isTerminal(m.status) && isTerminal(ev.data.status) && !state.client.isFollowing(m.id)) ensureSubscribed(m);
  }
}

function removeMessage(id) {
  state.order = state.order.filter((x) => x !== id);
  state.els.get(id)?.remove();
  state.els.delete(id);
  state.client.forget(id);
  state.inflight.remove(id);
  render();
}

// Errors no request was waiting for: refused frames and failures of a
// generation. (The client handles refused subscribes itself: it re-reads
// the message when the server kept less than we hold, and ends a message the
// server does not know.)
function onError(err) {
  showError(err.code, err.message);
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
    ack = await state.client.generate({ content, conversationId, attachments }).ack;
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
  // Resolves at the finish (stopped, or the real end if it had already ended).
  state.client
    .cancel(m.id)
    .catch((e) => showError(e.code, e.message))
    .finally(() => {
      state.stopping.delete(m.id);
      updateComposer();
    });
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
    data = await (name === 'retry' ? state.client.retry(messageId) : state.client.regenerate(messageId)).ack;
  } catch (e) {
    showError(e.code, e.message);
  } finally {
    state.ownRequests--;
  }
  if (!data) return;
  for (const id of data.removedMessageIds ?? []) removeMessage(id);
  const m = state.messages.get(data.messageId) ?? createMessage({ id: data.messageId, conversationId: data.conversationId, role: 'assistant', status: 'pending' });
  state.messages.set(m.id, m);
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
