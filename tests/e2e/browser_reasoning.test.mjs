// The page's Thinking block and answer speed (issue 22, "Web page") in
// headless Chromium (tests/web/ui_reasoning.mjs), against the mock server
// and against the real binary, whose scripted provider has `/think N`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMock } from './mock.mjs';
import { startServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

async function runUiReasoning(t, url, log = () => '') {
  if (!fs.existsSync(chromium)) {
    if (process.env.SKIP_BROWSER === '1') return t.skip(`SKIP_BROWSER=1 and no Chromium at ${chromium}`);
    assert.fail(`no Chromium at ${chromium} (apt-get install chromium, or SKIP_BROWSER=1 to skip)`);
  }
  const args = [path.join(here, '../web/ui_reasoning.mjs'), `${url}/`, '--require'];
  if (process.env.SCREENSHOT_DIR) args.push('--screenshot-dir', path.resolve(process.env.SCREENSHOT_DIR));
  const child = spawn(process.execPath, args, {
    env: { ...process.env, CHROMIUM: chromium, PLAYWRIGHT_CORE: path.join(here, 'node_modules/playwright-core') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.on('exit', r));
  t.diagnostic(out.trim().split('\n').join(' | '));
  assert.equal(code, 0, `ui_reasoning failed:\n${out}\n${log()}`);
  assert.match(out, /\b\d+ passed, 0 failed/);
}

test('Thinking block and TTFT in headless Chromium, mock server', { timeout: 120000 }, async (t) => {
  const mock = await startMock();
  try {
    await runUiReasoning(t, mock.url);
  } finally {
    await mock.stop();
  }
});

test('Thinking block and TTFT in headless Chromium, the real binary', { timeout: 120000 }, async (t) => {
  const server = await startServer();
  try {
    await runUiReasoning(t, server.url, () => `---- server log ----\n${server.log()}`);
  } finally {
    await server.stop();
  }
});
