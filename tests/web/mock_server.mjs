#!/usr/bin/env node
// A stand-in for `chatstream serve` for working on the web UI without the C++
// server: serves web/ at / and speaks the WebSocket protocol of docs/design.md §6
// at /ws with a scripted provider like §7 and §9 (/tool NAME {json},
// /tokens N, /fail N, /delay MS, /think N, /source URL [TITLE]). The page's
// client package (clients/js/src) is served under /client/, as the binary
// does. In memory, no dependencies (Node 20). It is NOT the reference: when
// the two disagree, the C++ server and docs/design.md win.
//
//   node tests/web/mock_server.mjs [--port 8090] [--seed]
//
// --seed creates a conversation with an image + a file attachment and a
// finished tool call, for screenshots. GET /api/files/demo.svg exists; every
// other file answers 404 (like a server without the files API of issue 11).
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../clients/js/src');
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon' };
const args = process.argv.slice(2);
// --port 0 binds a free port (the tests read it from the first log line).
const port = args.includes('--port') ? Number(args[args.indexOf('--port') + 1]) : 8090;

// ---------------------------------------------------------------- data
let seq = 0;
const newId = (p) => `${p}${Date.now().toString(36)}${(++seq).toString(36).padStart(4, '0')}`;
const conversations = new Map(); // id -> {id, userId, title, ...}
const messages = new Map(); // id -> row + {toolCalls: [], attachments: []}
const running = new Map(); // messageId -> generation
const TERMINAL = new Set(['complete', 'error', 'stopped', 'interrupted']);

function createConversation(userId, title) {
  const now = Date.now();
  const c = { id: newId('c'), userId, title, model: 'scripted', pinned: false, archived: false, starred: false, messageCount: 0, lastMessageAt: now, createdAt: now, updatedAt: now };
  conversations.set(c.id, c);
  return c;
}
function addMessage(c, role, fields) {
  const now = Date.now();
  const m = { id: newId('m'), conversationId: c.id, userId: c.userId, role, content: '', partialContent: null, reasoning: null, partialReasoning: null, reasoningTokens: null, status: 'complete', model: null, error: null, finishReason: null, inputTokens: null, outputTokens: null, tokensPerSecond: null, generationStartedAt: null, thinkingStartedAt: null, thinkingCompletedAt: null, firstTokenAt: null, generationCompletedAt: null, createdAt: now + seq / 1000, updatedAt: now, toolCalls: [], attachments: [], sources: [], ...fields };
  messages.set(m.id, m);
  c.messageCount++;
  c.lastMessageAt = c.updatedAt = now;
  return m;
}
const publicRow = ({ toolCalls, attachments, userId, sources, ...row }) => row;

// ---------------------------------------------------------------- scripted provider
const THOUGHTS = ['Let ', 'me ', 'think: ', 'the ', 'user ', 'wants ', 'ünïcode ', '🤔 ', 'and ', '思考 ', 'tokens. '];
const WORDS = ['Hello ', 'wörld ', '中文 ', '😀 ', 'streaming ', 'tokens ', 'é ', '🎉 ', 'from ', 'the ', 'mock ', 'server. '];
function calculator(input) {
  const e = String(input?.expression ?? '');
  if (!/^[\d+\-*/().\s]+$/.test(e)) return { success: false, error: `cannot evaluate '${e}'` };
  try {
    const v = Function(`"use strict";return (${e})`)();
    return Number.isFinite(v) ? { result: v } : { success: false, error: 'not a finite number' };
  } catch {
    return { success: false, error: `cannot evaluate '${e}'` };
  }
}
function plan(content) {
  const steps = [];
  let delay = 30;
  const d = /\/delay\s+(\d+)/.exec(content);
  if (d) delay = Number(d[1]);
  const tool = /\/tool\s+(\w+)\s*(\{.*\})?/s.exec(content);
  const tokens = /\/tokens\s+(\d+)/.exec(content);
  const fail = /\/fail\s+(\d+)/.exec(content);
  // §9: `/think N` reasoning tokens before the answer; `/source URL [TITLE]` cites a source first.
  const think = /\/think\s+(\d+)/.exec(content);
  if (think) for (let i = 0; i < Number(think[1]); i++) steps.push({ reasoning: THOUGHTS[i % THOUGHTS.length] });
  for (const src of content.matchAll(/^\/source\s+(\S+)(?:[ \t]+(.+))?$/gm)) steps.push({ source: { url: src[1], title: src[2]?.trim() } });
  if (tool) {
    let input = {};
    try {
      input = JSON.parse(tool[2] ?? '{}');
    } catch {}
    for (const w of ['Let ', 'me ', 'use ', `${tool[1]} `, '😀. ']) steps.push({ text: w });
    steps.push({ tool: tool[1], input });
    for (const w of ['Done: ', 'the ', 'tool ', 'answered ', 'above. ']) steps.push({ text: w });
  } else if (tokens || fail) {
    const n = Number((tokens ?? fail)[1]);
    for (let i = 0; i < n; i++) steps.push({ text: WORDS[i % WORDS.length] });
    if (fail) steps.push({ fail: true });
  } else if (!think) {
    for (const w of 'This is the mock server answering. Try /tool calculator {"expression":"6*7"} or /tokens 200 /delay 50.'.split(/(?<= )/)) steps.push({ text: w });
  }
  if (think && !tool && !tokens && !fail) for (const w of ['The ', 'answer ', 'is ', '42. ']) steps.push({ text: w });
  return { steps, delay };
}

// ---------------------------------------------------------------- generation (independent of sockets)
function u16Chunks(text, from, size = 64) {
  const out = [];
  let at = from;
  while (at < text.length) {
    let end = Math.min(text.length, at + size);
    const c = text.charCodeAt(end - 1);
    if (end < text.length && c >= 0xd800 && c <= 0xdbff) end++;
    out.push([at, text.slice(at, end)]);
    at = end;
  }
  return out;
}
function replay(m, from, emit, fromReasoning = 0) {
  emit({ type: 'start', messageId: m.id, conversationId: m.conversationId });
  const g = running.get(m.id);
  const reasoning = TERMINAL.has(m.status) ? m.reasoning ?? '' : g?.reasoning ?? m.partialReasoning ?? '';
  if (reasoning || g?.thinking) {
    // §9: reasoning is replayed first (from fromReasoningOffset), then the text.
    emit({ type: 'reasoning-start', messageId: m.id });
    for (const [o, d] of u16Chunks(reasoning, Math.min(fromReasoning, reasoning.length))) emit({ type: 'reasoning-delta', messageId: m.id, offset: o, delta: d });
    if (!g?.thinking) emit({ type: 'reasoning-end', messageId: m.id });
  }
  for (const s of m.sources) emit({ type: 'source', messageId: m.id, ...s });
  const text = TERMINAL.has(m.status) ? m.content : g?.text ?? m.partialContent ?? '';
  let at = Math.min(from, text.length);
  const c = text.charCodeAt(at - 1);
  if (at > 0 && c >= 0xd800 && c <= 0xdbff) at--; // inside a pair: round down
  for (const t of m.toolCalls) {
    if (t.result === undefined || t.textPosition < at) continue;
    for (const [o, d] of u16Chunks(text.slice(0, t.textPosition), at)) emit({ type: 'text-delta', messageId: m.id, offset: o, delta: d });
    at = Math.max(at, t.textPosition);
    emit({ type: 'tool-input-available', messageId: m.id, toolCallId: t.id, toolName: t.name, input: JSON.parse(t.arguments), textPosition: t.textPosition });
    const out = JSON.parse(t.result);
    if (out?.success === false) emit({ type: 'tool-output-error', messageId: m.id, toolCallId: t.id, errorText: String(out.error) });
    else emit({ type: 'tool-output-available', messageId: m.id, toolCallId: t.id, output: out });
  }
  for (const [o, d] of u16Chunks(text, at)) emit({ type: 'text-delta', messageId: m.id, offset: o, delta: d });
  if (TERMINAL.has(m.status)) emit(finishEvent(m));
}
const finishEvent = (m) => ({ type: 'finish', messageId: m.id, status: m.status, finishReason: m.finishReason ?? m.status, usage: { inputTokens: m.inputTokens ?? 0, outputTokens: m.outputTokens ?? 0, ...(m.reasoningTokens != null ? { reasoningTokens: m.reasoningTokens } : {}) }, ...(m.error ? { error: m.error } : {}) });

function startGeneration(m, content, requester) {
  const { steps, delay } = plan(content);
  const g = { text: '', reasoning: '', thinking: false, subscribers: new Set([requester]), cancelled: false, tokens: 0, reasoningTokens: 0 };
  running.set(m.id, g);
  const broadcast = (ev) => {
    for (const s of g.subscribers) s.sendEvent(ev);
  };
  const flush = setInterval(() => {
    m.partialContent = g.text; // partial_content lags the stream
    m.partialReasoning = g.reasoning || null;
  }, 200);
  const endThinking = () => {
    if (!g.thinking) return;
    g.thinking = false;
    m.thinkingCompletedAt = Date.now();
    broadcast({ type: 'reasoning-end', messageId: m.id });
  };
  const finish = (status, error) => {
    clearInterval(flush);
    endThinking();
    m.status = status;
    m.content = g.text;
    m.partialContent = null;
    m.reasoning = g.reasoning || null;
    m.partialReasoning = null;
    m.reasoningTokens = g.reasoningTokens || null;
    m.generationCompletedAt = Date.now();
    // Output tokens over the time from the first token to the end (§9).
    if (m.firstTokenAt != null && g.tokens > 0) m.tokensPerSecond = Math.round((g.tokens / Math.max(1, m.generationCompletedAt - m.firstTokenAt)) * 1000 * 10) / 10;
    m.finishReason = status === 'complete' ? 'stop' : status;
    m.error = error ?? null;
    m.inputTokens = content.length;
    m.outputTokens = g.tokens;
    for (const t of m.toolCalls) t.isPartial = false;
    m.toolCalls = m.toolCalls.filter((t) => t.result !== undefined);
    running.delete(m.id);
    broadcast(finishEvent(m));
  };
  g.cancel = () => {
    g.cancelled = true;
  };
  m.status = 'generating';
  m.generationStartedAt = Date.now();
  broadcast({ type: 'start', messageId: m.id, conversationId: m.conversationId });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  (async () => {
    for (const step of steps) {
      if (g.cancelled) return finish('stopped');
      await sleep(delay);
      if (g.cancelled) return finish('stopped');
      if (step.reasoning) {
        if (!g.thinking && !g.reasoning) {
          g.thinking = true;
          m.thinkingStartedAt = Date.now();
          broadcast({ type: 'reasoning-start', messageId: m.id });
        }
        broadcast({ type: 'reasoning-delta', messageId: m.id, offset: g.reasoning.length, delta: step.reasoning });
        g.reasoning += step.reasoning;
        g.reasoningTokens++;
      } else if (step.source) {
        const s = { position: m.sources.length + 1, url: step.source.url, ...(step.source.title ? { title: step.source.title } : {}) };
        m.sources.push(s);
        broadcast({ type: 'source', messageId: m.id, ...s });
      } else if (step.text) {
        endThinking();
        if (m.firstTokenAt == null) m.firstTokenAt = Date.now();
        broadcast({ type: 'text-delta', messageId: m.id, offset: g.text.length, delta: step.text });
        g.text += step.text;
        g.tokens++;
      } else if (step.fail) {
        return finish('error', 'upstream failed (scripted /fail)');
      } else if (step.tool) {
        const id = newId('call_');
        const pos = g.text.length;
        const argsText = JSON.stringify(step.input);
        broadcast({ type: 'tool-input-start', messageId: m.id, toolCallId: id, toolName: step.tool, textPosition: pos });
        for (let i = 0; i < argsText.length; i += 8) broadcast({ type: 'tool-input-delta', messageId: m.id, toolCallId: id, inputTextDelta: argsText.slice(i, i + 8) });
        const row = { id, name: step.tool, arguments: argsText, timestamp: Date.now(), textPosition: pos, isPartial: true };
        m.toolCalls.push(row);
        broadcast({ type: 'tool-input-available', messageId: m.id, toolCallId: id, toolName: step.tool, input: step.input, textPosition: pos });
        await sleep(Math.max(400, delay * 5)); // the tool "runs": the spinner is visible
        if (g.cancelled) return finish('stopped');
        const out = step.tool === 'calculator' ? calculator(step.input) : step.tool === 'datetime' ? { iso: new Date().toISOString() } : { success: false, error: `unknown tool '${step.tool}'` };
        row.result = JSON.stringify(out);
        if (out.success === false) broadcast({ type: 'tool-output-error', messageId: m.id, toolCallId: id, errorText: out.error });
        else broadcast({ type: 'tool-output-available', messageId: m.id, toolCallId: id, output: out });
        const say = out.success === false ? `(error: ${out.error}) ` : `${JSON.stringify(out.result ?? out)}. `;
        broadcast({ type: 'text-delta', messageId: m.id, offset: g.text.length, delta: say });
        g.text += say;
      }
    }
    finish('complete');
  })();
}

// ---------------------------------------------------------------- protocol
function handle(session, frame) {
  let f;
  try {
    f = JSON.parse(frame);
  } catch {
    return session.sendEvent({ type: 'error', code: 'bad_request', message: 'frame is not valid JSON' });
  }
  const id = f.id;
  if (process.env.MOCK_LOG && f.type !== 'ping') console.log(session.user, JSON.stringify(f));
  const err = (code, message, messageId) => session.sendEvent({ type: 'error', ...(id != null ? { id } : {}), ...(messageId ? { messageId } : {}), code, message });
  const mine = (mid) => {
    const m = messages.get(mid);
    return m && m.userId === session.user ? m : null;
  };
  switch (f.type) {
    case 'ping':
      return session.sendEvent({ type: 'pong', ...(id != null ? { id } : {}) });
    case 'watch':
      // Accepted so the page has no error banner; the mock sends no `changed` events.
      return session.sendEvent({ type: 'result', id, data: { watching: true } });
    case 'generate': {
      if (typeof f.content !== 'string') return err('bad_request', "missing field 'content'");
      let c = f.conversationId ? conversations.get(f.conversationId) : null;
      if (f.conversationId && (!c || c.userId !== session.user)) return err('not_found', 'no such conversation');
      if (c && [...running.keys()].some((k) => messages.get(k).conversationId === c.id)) return err('conflict', 'a generation is already running in this conversation');
      if (!c) c = createConversation(session.user, f.content.replace(/\s+/g, ' ').slice(0, 40) || 'New Chat');
      const u = addMessage(c, 'user', { content: f.content, attachments: (f.attachments ?? []).map((a, i) => ({ id: newId('a'), position: i, ...a })) });
      const a = addMessage(c, 'assistant', { status: 'pending', model: 'scripted' });
      session.sendEvent({ type: 'ack', id, conversationId: c.id, userMessageId: u.id, messageId: a.id });
      session.subs.add(a.id);
      startGeneration(a, f.content, session);
      return;
    }
    case 'subscribe': {
      const m = mine(f.messageId);
      if (!m) return err('not_found', 'no such message', f.messageId);
      const g = running.get(m.id);
      const text = TERMINAL.has(m.status) ? m.content : g?.text ?? m.partialContent ?? '';
      const reasoning = TERMINAL.has(m.status) ? m.reasoning ?? '' : g?.reasoning ?? m.partialReasoning ?? '';
      if ((f.fromOffset ?? 0) > text.length) return err('bad_request', `fromOffset ${f.fromOffset} is past the end of the text (${text.length})`, m.id);
      if ((f.fromReasoningOffset ?? 0) > reasoning.length) return err('bad_request', `fromReasoningOffset ${f.fromReasoningOffset} is past the end of the reasoning (${reasoning.length})`, m.id);
      replay(m, f.fromOffset ?? 0, (ev) => session.sendEvent(ev), f.fromReasoningOffset ?? 0);
      if (g) {
        g.subscribers.add(session);
        session.subs.add(m.id);
      }
      return;
    }
    case 'cancel': {
      const m = mine(f.messageId);
      if (!m) return err('not_found', 'no such message', f.messageId);
      const g = running.get(m.id);
      if (!g) return err('conflict', 'message is not generating', m.id);
      g.subscribers.add(session);
      g.cancel();
      return;
    }
    case 'query': {
      const a = f.args ?? {};
      const result = (data) => session.sendEvent({ type: 'result', id, data });
      switch (f.name) {
        case 'listConversations':
          return result({ conversations: [...conversations.values()].filter((c) => c.userId === session.user).sort((x, y) => y.updatedAt - x.updatedAt).map(({ userId, ...c }) => c), nextCursor: null });
        case 'listMessages': {
          const c = conversations.get(a.conversationId);
          if (!c || c.userId !== session.user) return err('not_found', 'no such conversation');
          return result({ messages: [...messages.values()].filter((m) => m.conversationId === c.id).sort((x, y) => x.createdAt - y.createdAt).map(publicRow), nextCursor: null });
        }
        case 'getMessage': {
          const m = mine(a.messageId);
          return m ? result({ ...publicRow(m), sources: m.sources }) : err('not_found', 'no such message');
        }
        case 'getToolCalls': {
          const m = mine(a.messageId);
          return m ? result(m.toolCalls.filter((t) => a.includePartial || !t.isPartial)) : err('not_found', 'no such message');
        }
        case 'getAttachments': {
          const m = mine(a.messageId);
          return m ? result(m.attachments) : err('not_found', 'no such message');
        }
        default:
          return err('bad_request', `unknown query '${f.name}'`);
      }
    }
    default:
      return err('bad_request', `unknown type '${f.type}'`);
  }
}

// ---------------------------------------------------------------- WebSocket framing (RFC 6455, text frames)
function accept(req, socket) {
  const url = new URL(req.url, 'http://x');
  let user = url.searchParams.get('user') || 'local';
  const token = url.searchParams.get('token');
  if (token) {
    try {
      user = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
    } catch {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
  }
  const key = req.headers['sec-websocket-key'];
  const hash = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${hash}\r\n\r\n`);
  socket.setNoDelay(true);
  const session = {
    user,
    subs: new Set(),
    sendEvent(ev) {
      if (socket.destroyed) return;
      const body = Buffer.from(JSON.stringify(ev));
      const head = body.length < 126 ? Buffer.from([0x81, body.length]) : body.length < 65536 ? Buffer.from([0x81, 126, body.length >> 8, body.length & 255]) : Buffer.concat([Buffer.from([0x81, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(body.length)); return b; })()]);
      socket.write(Buffer.concat([head, body]));
    },
  };
  let buf = Buffer.alloc(0);
  let parts = [];
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = buf[0] & 0x80;
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + 4 + len) return;
      const mask = buf.subarray(at, at + 4);
      const data = Buffer.from(buf.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
      buf = buf.subarray(at + 4 + len);
      if (op === 8) return socket.end(Buffer.from([0x88, 0]));
      if (op === 9) socket.write(Buffer.concat([Buffer.from([0x8a, data.length]), data]));
      if (op === 1 || op === 0) {
        parts.push(data);
        if (fin) {
          handle(session, Buffer.concat(parts).toString('utf8'));
          parts = [];
        }
      }
    }
  });
  const gone = () => {
    for (const mid of session.subs) running.get(mid)?.subscribers.delete(session);
  };
  socket.on('close', gone);
  socket.on('error', gone);
}

// ---------------------------------------------------------------- HTTP
const DEMO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="100"><rect width="160" height="100" fill="#2557d6"/><circle cx="50" cy="50" r="30" fill="#ffd54a"/><text x="90" y="58" font-family="sans-serif" font-size="20" fill="#fff">demo</text></svg>';
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/api/files/demo.svg') {
    res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'private' });
    return res.end(DEMO_SVG);
  }
  if (url.pathname.startsWith('/api/')) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    return res.end('not found\n');
  }
  if (url.pathname === '/healthz') return res.end('ok\n');
  // The page imports the client package from /client/ (the binary embeds it there).
  const fromClient = url.pathname.startsWith('/client/');
  const dir = fromClient ? CLIENT : WEB;
  const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(fromClient ? '/client/'.length : 1));
  const file = path.resolve(dir, rel);
  if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    return res.end('not found\n');
  }
  res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
  fs.createReadStream(file).pipe(res);
});
server.on('upgrade', (req, socket) => {
  if (new URL(req.url, 'http://x').pathname !== '/ws') return socket.destroy();
  accept(req, socket);
});

if (args.includes('--seed')) {
  for (const user of ['local', 'alice']) {
    const c = createConversation(user, 'Attachments and a tool call');
    addMessage(c, 'user', {
      content: 'Here is a picture and a report. What is 6*7?',
      attachments: [
        { id: newId('a'), position: 0, type: 'image', name: 'demo.svg', storageId: 'demo.svg', mimeType: 'image/svg+xml', size: DEMO_SVG.length, metadata: { width: 160, height: 100 } },
        { id: newId('a'), position: 1, type: 'file', name: 'report.pdf', storageId: 'no-such-file', mimeType: 'application/pdf', size: 48213, metadata: null },
      ],
    });
    const text = 'Let me compute that 🧮. The answer is 42.';
    addMessage(c, 'assistant', {
      content: text,
      outputTokens: 12,
      inputTokens: 9,
      finishReason: 'stop',
      toolCalls: [{ id: 'call_seed', name: 'calculator', arguments: '{"expression":"6*7"}', result: '{"result":42}', timestamp: Date.now(), textPosition: 'Let me compute that 🧮.'.length, isPartial: false }],
    });
  }
}

server.listen(port, '127.0.0.1', () => console.log(`mock chatstream on http://127.0.0.1:${server.address().port}/`));
