#!/usr/bin/env node
// Browser test of the page's reasoning display (issue 22, "Web page"), NOT
// run by `node --test` itself: tests/e2e/browser_reasoning.test.mjs starts
// the mock server (tests/web/mock_server.mjs, which has `/think N`) and runs
// this in headless Chromium through playwright-core, like ui_smoke.mjs.
//
//   node tests/web/ui_reasoning.mjs BASE_URL [--screenshot-dir DIR] [--require]
//
// Checks: a "Thinking" block is open and live while the model thinks,
// collapses when the answer text starts, can be reopened (and stays open);
// a finished answer shows TTFT and tokens/s from its stored row; a socket
// drop and a reload in the middle of the thinking resume the reasoning with
// nothing repeated or missing (compared with the stored reasoning).
import path from 'node:path';
import { assert, browserArgs, check, finish, launchBrowser } from './browser_harness.mjs';

const { base, shots } = browserArgs('http://127.0.0.1:8090/');

const user = `think-${Date.now().toString(36)}`;
const pageUrl = new URL(base);
pageUrl.searchParams.set('user', user);

const browser = await launchBrowser();
const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

// The thinking block, answer text and footer of one message, as rendered.
const info = (id) =>
  page.evaluate((mid) => {
    const art = document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`);
    if (!art) return null;
    const box = art.querySelector('.thinking');
    const body = art.querySelector('.msg-body');
    const foot = art.querySelector('.msg-foot');
    return {
      status: art.dataset.status,
      thinking: box && !box.hidden ? { open: box.open, phase: box.dataset.phase, summary: box.querySelector('summary').textContent, text: box.querySelector('.thinking-text').textContent, spinner: Boolean(box.querySelector('.spinner')) } : null,
      text: [...body.childNodes].filter((n) => n.nodeType === 3).map((n) => n.data).join(''),
      foot: foot.textContent,
      ttftMs: foot.dataset.ttftMs,
      tokensPerSecond: foot.dataset.tokensPerSecond,
    };
  }, id);

const stored = (id) =>
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
  const known = await page.$$eval('article.msg-assistant', (a) => a.map((x) => x.dataset.id));
  await page.fill('#composer-input', content);
  await page.click('#send');
  const handle = await page.waitForFunction(
    (ids) => [...document.querySelectorAll('article.msg-assistant')].map((a) => a.dataset.id).find((id) => !ids.includes(id) && !id.startsWith('local-')),
    known,
    { timeout: 15000 },
  );
  return handle.jsonValue();
}
// Waits until predicate([messageId, arg]) holds in the page (each predicate
// finds its article itself: the page's CSP forbids building functions from strings).
const waitFor = (id, predicate, arg = null, timeout = 30000) => page.waitForFunction(predicate, [id, arg], { timeout });
const thinkingLength = ([mid, n]) => (document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"] .thinking-text`)?.textContent.length ?? 0) > n;
const isStatus = ([mid, st]) => st.includes(document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`)?.dataset.status);
const answerStarted = ([mid]) => (document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"] .msg-body`)?.textContent.length ?? 0) > 0;
const speedShown = ([mid]) => Boolean(document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"] .msg-foot`)?.dataset.ttftMs);

await check('page loads and connects', async () => {
  await page.goto(pageUrl.toString());
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
});

let answered = null;
await check('the Thinking block is live while the model thinks, then collapses when the answer starts', async () => {
  const id = await send('/think 40 /tokens 30 /delay 40');
  answered = id;
  await waitFor(id, thinkingLength, 10);
  const live = await info(id);
  assert(live.thinking, 'no Thinking block while thinking');
  assert(live.thinking.open === true && live.thinking.phase === 'live', `block not open and live: ${JSON.stringify(live.thinking)}`);
  assert(live.thinking.spinner && /Thinking/.test(live.thinking.summary), `summary ${live.thinking.summary}`);
  assert(live.text === '', `answer text before the thinking ended: ${JSON.stringify(live.text)}`);
  await shot('web-thinking.png');
  await waitFor(id, answerStarted);
  const after = await info(id);
  assert(after.thinking.open === false && after.thinking.phase === 'done', `block not collapsed once the answer started: ${JSON.stringify(after.thinking)}`);
  assert(!after.thinking.spinner, 'spinner left after the thinking ended');
});

await check('the collapsed Thinking block can be reopened, and stays open while the answer streams', async () => {
  await page.click(`article.msg[data-id="${answered}"] .thinking summary`);
  await page.waitForTimeout(200); // more answer tokens render meanwhile
  const opened = await info(answered);
  assert(opened.thinking.open === true, 'the block did not reopen');
  await waitFor(answered, isStatus, ['complete']);
  const done = await info(answered);
  assert(done.thinking.open === true, 'a render closed the block the reader had opened');
  const row = await stored(answered);
  assert(done.thinking.text === row.reasoning, `rendered reasoning differs from the stored one:\n${JSON.stringify(done.thinking.text)}\n${JSON.stringify(row.reasoning)}`);
  assert(done.text === row.content, 'rendered answer differs from the stored content');
  assert(/^Thought for /.test(done.thinking.summary), `summary of a finished thinking: ${done.thinking.summary}`);
});

await check('a finished answer shows TTFT and tokens/s from its stored row', async () => {
  await waitFor(answered, speedShown);
  const done = await info(answered);
  const row = await stored(answered);
  assert(Number(done.ttftMs) === row.firstTokenAt - row.generationStartedAt, `TTFT ${done.ttftMs} ms, row says ${row.firstTokenAt - row.generationStartedAt}`);
  assert(Number(done.tokensPerSecond) === row.tokensPerSecond, `tokens/s ${done.tokensPerSecond}, row ${row.tokensPerSecond}`);
  assert(/TTFT \d/.test(done.foot) && /[\d.]+ tokens\/s/.test(done.foot), `footer: ${done.foot}`);
  await shot('web-thought.png');
});

await check('a socket drop while thinking resumes the reasoning without a gap or a repeat', async () => {
  const id = await send('/think 120 /tokens 10 /delay 25');
  await waitFor(id, thinkingLength, 30);
  await page.evaluate(() => globalThis.__chatstream.client.socket.ws.close());
  await page.waitForSelector('#conn[data-state="waiting"]', { timeout: 5000 });
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
  await waitFor(id, isStatus, ['complete']);
  const done = await info(id);
  const row = await stored(id);
  assert(done.thinking.text === row.reasoning, `rendered ${done.thinking.text.length} units of reasoning, stored ${row.reasoning.length}`);
  assert(done.text === row.content, 'answer differs from the stored content');
});

await check('a reload while thinking resumes the same message from the reasoning it held', async () => {
  const id = await send('/think 150 /tokens 10 /delay 25');
  await waitFor(id, thinkingLength, 30);
  await page.waitForTimeout(300); // the page saves its in-flight copy every 250 ms
  await page.reload();
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
  await page.waitForSelector(`article.msg[data-id="${id}"]`, { timeout: 15000 });
  const resumed = await info(id);
  assert(resumed.status !== 'complete', 'the answer ended before the reload; make /delay slower');
  await waitFor(id, isStatus, ['complete']);
  const done = await info(id);
  const row = await stored(id);
  assert(done.thinking.text === row.reasoning, `rendered ${done.thinking.text.length} units of reasoning, stored ${row.reasoning.length}`);
  assert(done.thinking.open === false, 'a finished thinking should be collapsed');
});

await check('no page errors', async () => {
  assert(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
});

async function shot(name) {
  if (shots) await page.screenshot({ path: path.join(shots, name) });
}

await browser.close();
finish();
