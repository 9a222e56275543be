// Shared by the browser scripts (ui_smoke.mjs, ui_reasoning.mjs): the
// command line, playwright-core and Chromium (or a SKIP line, an error with
// --require), and named checks counted into the "N passed, M failed" line
// the e2e wrappers read.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const positional = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1] === '--screenshot-dir'));

/** BASE_URL (first argument, else $CHATSTREAM_URL, else @p fallback) and --screenshot-dir. */
export function browserArgs(fallback) {
  return { base: positional[0] ?? process.env.CHATSTREAM_URL ?? fallback, shots: opt('--screenshot-dir') };
}

export const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(flag('--require') ? 1 : 0);
}

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch {}
  const dir = process.env.PLAYWRIGHT_CORE;
  if (dir) return createRequire(path.join(path.resolve(dir), 'package.json'))('./index.js');
  return null;
}

/** playwright-core's chromium launched headless, or a SKIP exit when it or the browser is missing. */
export async function launchBrowser() {
  const pw = await loadPlaywright();
  if (!pw) skip('playwright-core not found (npm i --no-save playwright-core, or set PLAYWRIGHT_CORE)');
  if (!fs.existsSync(chromium)) skip(`no Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM)`);
  return pw.chromium.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox'] });
}

let passed = 0;
let failed = 0;

/** Runs one named check; a throw fails it and the run goes on. */
export async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e?.stack ?? e).split('\n').join('\n  ')}`);
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Prints the summary line and exits 1 when a check failed. */
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
