// The chat page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the real binary: tests/web/ui_smoke.mjs checks the
// inline tool call, the reload mid-stream, a socket drop and Stop.
// SCREENSHOT_DIR=docs/screenshots writes the pictures used by the docs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

test('chat page in headless Chromium (tests/web/ui_smoke.mjs)', { timeout: 120000 }, async (t) => {
  // A missing browser fails the test; SKIP_BROWSER=1 is the explicit opt-out
  // (reported as skipped, which scripts/test.sh refuses on CI).
  if (!fs.existsSync(chromium)) {
    if (process.env.SKIP_BROWSER === '1') return t.skip(`SKIP_BROWSER=1 and no Chromium at ${chromium}`);
    assert.fail(`no Chromium at ${chromium} (apt-get install chromium, or SKIP_BROWSER=1 to skip)`);
  }
  const server = await startServer();
  try {
    const args = [path.join(here, '../web/ui_smoke.mjs'), `${server.url}/`, '--require'];
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
    assert.equal(code, 0, `ui_smoke failed:\n${out}\n---- server log ----\n${server.log()}`);
    assert.match(out, /\b\d+ passed, 0 failed/);
  } finally {
    await server.stop();
  }
});
