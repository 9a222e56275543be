// Test support: tests/web/mock_server.mjs (the in-memory stand-in for
// `chatstream serve`, with the §9 reasoning directives the binary may not
// have yet) on a free port.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Starts the mock server; resolves with {url, wsUrl, stop()} once it listens. */
export async function startMock() {
  const child = spawn(process.execPath, [path.join(here, '../web/mock_server.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock server did not start:\n${log}`)), 10000);
    const onData = (d) => {
      log += d;
      const m = /mock chatstream on (http:\/\/[^/\s]+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`mock server exited with ${code}:\n${log}`)));
  });
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/ws`,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
