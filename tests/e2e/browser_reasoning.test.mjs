// The page's Thinking block and answer speed (issue 22, "Web page") in
// headless Chromium (tests/web/ui_reasoning.mjs), against the mock server
// and against the real binary, whose scripted provider has `/think N`.
import { test } from 'node:test';
import { runBrowserScript } from './browser_run.mjs';
import { startMock } from './mock.mjs';
import { startServer } from './server.mjs';

test('Thinking block and TTFT in headless Chromium, mock server', { timeout: 120000 }, async (t) => {
  const mock = await startMock();
  try {
    await runBrowserScript(t, 'ui_reasoning.mjs', mock.url);
  } finally {
    await mock.stop();
  }
});

test('Thinking block and TTFT in headless Chromium, the real binary', { timeout: 120000 }, async (t) => {
  const server = await startServer();
  try {
    await runBrowserScript(t, 'ui_reasoning.mjs', server.url, () => `---- server log ----\n${server.log()}`);
  } finally {
    await server.stop();
  }
});
