// Test support: the real `chatstream serve` on a free port and a fresh
// database, as the README starts it (dev mode, scripted provider).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The binary: $CHATSTREAM_BIN, else build/src/chatstream of this checkout. */
export const binary = process.env.CHATSTREAM_BIN ?? path.join(root, 'build/src/chatstream');

/**
 * Starts `chatstream serve --port 0 --db <tmp>` with @p args and resolves
 * once it logs `listening on http://HOST:PORT`. stop() sends SIGTERM;
 * kill() sends SIGKILL and keeps the database, and restart() starts a new
 * server on the same port and database (what a client sees across a crash).
 * @p options.port and @p options.dir reuse a port and a database directory.
 */
export async function startServer(args = [], { port = 0, dir = null } = {}) {
  if (!fs.existsSync(binary)) throw new Error(`no chatstream binary at ${binary} (build it, or set CHATSTREAM_BIN)`);
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'chatstream-e2e-'));
  const child = spawn(binary, ['serve', '--port', String(port), '--db', path.join(dir, 'chat.db'), '--threads', '2', '--flush-ms', '20', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 15000);
    const onData = (d) => {
      log += d;
      const m = /listening on (http:\/\/[^\s:]+:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return {
    url,
    log: () => log,
    /** SIGKILL: no drain, the database is left as a crash leaves it. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.on('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    },
    /** A new server on the same port and database (after kill()). */
    restart() {
      return startServer(args, { port: Number(new URL(url).port), dir });
    },
    /** SIGTERM, then throws unless the server exited 0 with no sanitizer report in its log. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.on('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
      const report = /ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|WARNING: ThreadSanitizer|: runtime error: /.exec(log);
      if (child.exitCode !== 0 || report)
        throw new Error(`chatstream ${report ? 'printed a sanitizer report' : `exited with ${child.exitCode ?? child.signalCode}`}:\n${log.slice(-4000)}`);
    },
  };
}
