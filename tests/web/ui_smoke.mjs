#!/usr/bin/env node
// Browser smoke test of the chat page (issue 8), NOT run by `node --test`:
// drives headless Chromium (Debian `chromium`) through playwright-core against
// a running server that serves web/ at / and the protocol at /ws.
//
//   node tests/web/ui_smoke.mjs [BASE_URL] [--screenshot-dir DIR] [--require]
//
// BASE_URL defaults to $CHATSTREAM_URL or http://127.0.0.1:8080/ (a dev-mode
// server, no --jwt-secret-env). Chromium: $CHROMIUM or /usr/bin/chromium.
// playwright-core: resolved from node_modules (npm i --no-save playwright-core)
// or from $PLAYWRIGHT_CORE (path to the package directory). When either is
// missing the test prints "SKIP: ..." and exits 0, or exits 1 with --require.
//
// Checks: a `/tool calculator` reply shows the call inline exactly at its
// textPosition with its result and no spinner left; a reload mid-stream
// resumes the same message without duplicated or missing text (compared with
// the server's stored content); Stop ends a stream as `stopped`.
import path from 'node:path';
import { assert, browserArgs, check, finish, launchBrowser } from './browser_harness.mjs';

const { base, shots } = browserArgs('http://127.0.0.1:8080/');

const user = `smoke-${Date.now().toString(36)}`;
const pageUrl = new URL(base);
pageUrl.searchParams.set('user', user);

const browser = await launchBrowser();
const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('console', (m) => m.type() === 'error' && !/api\/files|404/.test(m.text()) && consoleErrors.push(m.text()));

// In-page helpers: the text of a message body (text nodes only) and the
// text before each tool box, in UTF-16 units.
const bodyInfo = (id) =>
  page.evaluate((mid) => {
    const art = document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`);
    if (!art) return null;
    const body = art.querySelector('.msg-body');
    let text = '';
    const tools = [];
    for (const n of body.childNodes) {
      if (n.nodeType === 3) text += n.data;
      else if (n.classList?.contains('tool'))
        tools.push({ before: text.length, textPosition: Number(n.dataset.textPosition), state: n.dataset.state, spinner: Boolean(n.querySelector('.spinner')), result: n.querySelector('.tool-result')?.textContent ?? null, name: n.querySelector('.tool-name')?.textContent });
    }
    return { text, tools, status: art.dataset.status };
  }, id);

// Asks the server (a second socket, from the page) for a message's stored content.
const storedContent = (id) =>
  page.evaluate(
    ([mid, u]) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?user=${encodeURIComponent(u)}`);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'query', id: 'q', name: 'getMessage', args: { messageId: mid } }));
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.id === 'q') {
            ws.close();
            f.type === 'result' ? resolve(f.data) : reject(new Error(f.message));
          }
        };
        ws.onerror = () => reject(new Error('socket error'));
      }),
    [id, user],
  );

async function send(content) {
  const before = await page.$$eval('article.msg-assistant', (a) => a.map((x) => x.dataset.id));
  await page.fill('#composer-input', content);
  await page.click('#send');
  const handle = await page.waitForFunction(
    (known) => [...document.querySelectorAll('article.msg-assistant')].map((a) => a.dataset.id).find((id) => !known.includes(id) && !id.startsWith('local-')),
    before,
    { timeout: 15000 },
  );
  return handle.jsonValue();
}
const waitStatus = (id, statuses, timeout = 60000) =>
  page.waitForFunction(([mid, st]) => st.includes(document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`)?.dataset.status), [id, statuses], { timeout });
const waitLength = (id, n, timeout = 30000) =>
  page.waitForFunction(([mid, len]) => (document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"] .msg-body`)?.textContent.length ?? 0) > len, [id, n], { timeout });
const shot = async (name) => shots && page.screenshot({ path: path.join(shots, name) });

await check('page loads and connects', async () => {
  await page.goto(pageUrl.toString());
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
});

await check('tool call rendered inline at its textPosition, with its result, no spinner left', async () => {
  const id = await send('/tool calculator {"expression":"6*7"}');
  let sawSpinner = false;
  for (let i = 0; i < 200; i++) {
    const info = await bodyInfo(id);
    if (info?.tools.some((t) => t.spinner)) sawSpinner = true;
    if (info && ['complete', 'error', 'stopped', 'interrupted'].includes(info.status)) break;
    await page.waitForTimeout(25);
  }
  await waitStatus(id, ['complete']);
  const info = await bodyInfo(id);
  assert(info.tools.length === 1, `expected 1 tool call, got ${info.tools.length}`);
  const t = info.tools[0];
  assert(t.name === 'calculator', `tool name ${t.name}`);
  assert(t.before === t.textPosition, `tool box after ${t.before} UTF-16 units of text, textPosition is ${t.textPosition}`);
  assert(t.state === 'output-available' && /42/.test(t.result ?? ''), `tool state ${t.state}, result ${t.result}`);
  assert(!t.spinner, 'spinner still shown after the result');
  const stored = await storedContent(id);
  assert(info.text === stored.content, `rendered text differs from stored content:\n${JSON.stringify(info.text)}\n${JSON.stringify(stored.content)}`);
  console.log(`  (spinner seen while running: ${sawSpinner})`);
  // Issue 22: the finished answer's footer shows TTFT and tokens/s from its stored row.
  await page.waitForFunction((mid) => Boolean(document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"] .msg-foot`)?.dataset.ttftMs), id, { timeout: 10000 });
  const foot = await page.$eval(`article.msg[data-id="${id}"] .msg-foot`, (f) => ({ ttft: Number(f.dataset.ttftMs), tps: f.dataset.tokensPerSecond, text: f.textContent }));
  assert(foot.ttft === stored.firstTokenAt - stored.generationStartedAt, `TTFT ${foot.ttft}, row ${stored.firstTokenAt - stored.generationStartedAt}`);
  assert(/TTFT \d/.test(foot.text), `footer ${foot.text}`);
  console.log(`  (footer: ${foot.text})`);
  if (stored.tokensPerSecond != null) assert(Number(foot.tps) === stored.tokensPerSecond && /tokens\/s/.test(foot.text), `tokens/s ${foot.tps}, row ${stored.tokensPerSecond}`);
  await shot('web-tool-call.png');
});

await check('reload mid-stream resumes the same message without duplicating text', async () => {
  const id = await send('/tokens 400 /delay 15');
  await waitLength(id, 40);
  const before = (await bodyInfo(id)).text;
  await page.reload();
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
  await page.waitForSelector(`article.msg[data-id="${id}"]`, { timeout: 15000 });
  const resumed = await bodyInfo(id);
  assert(resumed.status !== 'complete', 'the stream had already finished before the reload; use a slower /delay');
  await waitStatus(id, ['complete']);
  const info = await bodyInfo(id);
  const stored = await storedContent(id);
  assert(info.text.startsWith(before), 'text before the reload is not a prefix of the final text');
  assert(info.text === stored.content, `rendered ${info.text.length} units, stored ${stored.content.length}: duplicated or missing text`);
  assert(stored.outputTokens === 400, `outputTokens ${stored.outputTokens}`);
  await shot('web-resumed.png');
});

await check('socket drop mid-stream: reconnects and resumes from the rendered offset', async () => {
  const id = await send('/tokens 300 /delay 15');
  await waitLength(id, 40);
  await page.evaluate(() => globalThis.__chatstream.client.socket.ws.close());
  await page.waitForSelector('#conn[data-state="waiting"]', { timeout: 5000 });
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
  await waitStatus(id, ['complete']);
  const info = await bodyInfo(id);
  const stored = await storedContent(id);
  assert(info.text === stored.content, `rendered ${info.text.length} units, stored ${stored.content.length}`);
});

await check('an error event is shown (not_found for an unknown conversation)', async () => {
  await page.evaluate(() => (location.hash = '#c=no-such-conversation'));
  await page.waitForFunction(() => [...document.querySelectorAll('#errors .error-banner code')].some((c) => c.textContent === 'not_found'), null, { timeout: 10000 });
  await page.waitForFunction(() => location.hash === '' && document.querySelector('#chat-title').textContent === 'New chat');
  await page.click('#conversations .conv');
  await page.waitForSelector('article.msg');
});

await check('Stop cancels the stream and keeps the partial text', async () => {
  const id = await send('/tokens 3000 /delay 10');
  await waitLength(id, 30);
  await page.waitForSelector('#stop:not([hidden])');
  await page.click('#stop');
  await waitStatus(id, ['stopped'], 15000);
  const info = await bodyInfo(id);
  const stored = await storedContent(id);
  assert(stored.status === 'stopped', `stored status ${stored.status}`);
  assert(info.text === stored.content, 'rendered text differs from the stored partial text');
  assert(await page.$eval('#stop', (b) => b.hidden), 'Stop button still shown');
  await shot('web-stopped.png');
});

// Issue 12 in the browser: a second tab of the same user follows along
// through `watch`; rename, pin, regenerate, branch and delete from the page.
const page2 = await context.newPage();
page2.on('pageerror', (e) => consoleErrors.push(`tab 2: ${e}`));
const articleIds = (p) => p.$$eval('article.msg-assistant', (a) => a.map((x) => x.dataset.id));
const statusIn = (p, id, statuses) =>
  p.waitForFunction(([mid, st]) => st.includes(document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`)?.dataset.status), [id, statuses], { timeout: 30000 });
let followed = null;

await check('a second tab follows a new answer live (watch)', async () => {
  const conversation = await page.evaluate(() => globalThis.__chatstream.currentId);
  const url = new URL(pageUrl);
  url.hash = `c=${encodeURIComponent(conversation)}`;
  await page2.goto(url.toString());
  await page2.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
  await page2.waitForSelector('article.msg');
  followed = await send('/tokens 200 /delay 10');
  await page2.waitForSelector(`article.msg[data-id="${followed}"]`, { timeout: 15000 });
  await statusIn(page2, followed, ['complete']);
  const text = await page2.$eval(`article.msg[data-id="${followed}"] .msg-body`, (b) => b.textContent);
  const stored = await storedContent(followed);
  assert(text === stored.content, `tab 2 rendered ${text.length} units, stored ${stored.content.length}`);
});

await check('rename and pin in one tab show in the other', async () => {
  page.once('dialog', (d) => d.accept('Renamed in tab one'));
  await page.click('#rename-chat');
  await page2.waitForFunction(() => document.querySelector('#chat-title').textContent === 'Renamed in tab one', null, { timeout: 10000 });
  await page.click('#pin-chat');
  await page2.waitForFunction(() => document.querySelector('#conversations .conv .conv-pin') !== null, null, { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('#pin-chat').textContent === 'Unpin', null, { timeout: 10000 });
});

await check('regenerate replaces the answer in both tabs', async () => {
  await waitStatus(followed, ['complete']);
  const known = await articleIds(page);
  await page.click(`button[data-action="regenerate"][data-id="${followed}"]`);
  const fresh = await (
    await page.waitForFunction((ids) => [...document.querySelectorAll('article.msg-assistant')].map((a) => a.dataset.id).find((id) => !ids.includes(id) && !id.startsWith('local-')), known, { timeout: 15000 })
  ).jsonValue();
  await waitStatus(fresh, ['complete']);
  await page2.waitForSelector(`article.msg[data-id="${fresh}"]`, { timeout: 15000 });
  await page2.waitForFunction((old) => !document.querySelector(`article.msg[data-id="${CSS.escape(old)}"]`), followed, { timeout: 15000 });
  assert(!(await articleIds(page)).includes(followed), 'old answer still shown in tab 1');
  followed = fresh;
  await shot('web-actions.png');
});

await check('branch opens a copy, deleting it removes it from both tabs', async () => {
  const before = await page2.$$eval('#conversations .conv', (b) => b.length);
  const original = await page.evaluate(() => globalThis.__chatstream.currentId);
  await page.click(`button[data-action="branch"][data-id="${followed}"]`);
  await page.waitForFunction((o) => globalThis.__chatstream.currentId && globalThis.__chatstream.currentId !== o, original, { timeout: 10000 });
  const copy = await page.evaluate(() => globalThis.__chatstream.currentId);
  await page.waitForSelector('article.msg-assistant');
  await page2.waitForFunction((n) => document.querySelectorAll('#conversations .conv').length === n + 1, before, { timeout: 10000 });
  page.once('dialog', (d) => d.accept());
  await page.click('#delete-chat');
  await page.waitForFunction(() => globalThis.__chatstream.currentId === null, null, { timeout: 10000 });
  await page2.waitForFunction((id) => !document.querySelector(`#conversations .conv[data-id="${CSS.escape(id)}"]`), copy, { timeout: 10000 });
});

await check('conversation list shows the conversation; no page errors', async () => {
  const n = await page.$$eval('#conversations .conv', (b) => b.length);
  assert(n >= 1, 'no conversation listed');
  assert(consoleErrors.length === 0, `page errors: ${consoleErrors.join(' | ')}`);
});

await browser.close();
finish();
