// The page's Thinking block and answer speed (issue 22, "Web page") in
// headless Chromium, against the mock server: it has `/think N`, which the
// binary's scripted provider may not have yet (tests/web/ui_reasoning.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMock } from './mock.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

test('Thinking block and TTFT in headless Chromium (tests/web/ui_reasoning.mjs, mock server)', { timeout: 120000 }, async (t) => {
  if (!fs.existsSync(chromium)) {
    if (process.env.SKIP_BROWSER === '1') return t.skip(`SKIP_BROWSER=1 and no Chromium at ${chromium}`);
    assert.fail(`no Chromium at ${chromium} (apt-get install chromium, or SKIP_BROWSER=1 to skip)`);
  }
  const mock = await startMock();
  try {
    const args = [path.join(here, '../web/ui_reasoning.mjs'), `${mock.url}/`, '--require'];
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
    assert.equal(code, 0, `ui_reasoning failed:\n${out}`);
    assert.match(out, /\b\d+ passed, 0 failed/);
  } finally {
    await mock.stop();
  }
});
