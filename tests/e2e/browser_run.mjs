// Test support: runs one of the browser scripts of tests/web (ui_smoke.mjs,
// ui_reasoning.mjs) against @p url in Debian's Chromium and asserts it
// passed. A missing browser fails the test; SKIP_BROWSER=1 is the explicit
// opt-out (reported as skipped, which scripts/test.sh refuses on CI).
// SCREENSHOT_DIR=docs/screenshots writes the pictures used by the docs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Runs tests/web/@p script against @p url; @p log() is shown when it fails. */
export async function runBrowserScript(t, script, url, log = () => '') {
  if (!fs.existsSync(chromium)) {
    if (process.env.SKIP_BROWSER === '1') return t.skip(`SKIP_BROWSER=1 and no Chromium at ${chromium}`);
    assert.fail(`no Chromium at ${chromium} (apt-get install chromium, or SKIP_BROWSER=1 to skip)`);
  }
  const args = [path.join(here, '../web', script), `${url}/`, '--require'];
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
  assert.equal(code, 0, `${script} failed:\n${out}\n${log()}`);
  assert.match(out, /\b\d+ passed, 0 failed/);
}
