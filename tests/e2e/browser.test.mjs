// The chat page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the real binary: tests/web/ui_smoke.mjs checks the
// inline tool call, the reload mid-stream, a socket drop and Stop.
import { test } from 'node:test';
import { runBrowserScript } from './browser_run.mjs';
import { startServer } from './server.mjs';

test('chat page in headless Chromium (tests/web/ui_smoke.mjs)', { timeout: 120000 }, async (t) => {
  const server = await startServer();
  try {
    await runBrowserScript(t, 'ui_smoke.mjs', server.url, () => `---- server log ----\n${server.log()}`);
  } finally {
    await server.stop();
  }
});
