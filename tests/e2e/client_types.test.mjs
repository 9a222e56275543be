// The package's hand-written types (clients/js/src/index.d.ts) compile under
// strict TypeScript, and its transport and chunks fit the installed `ai`
// package's ChatTransport and UIMessageChunk types (types/check.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = path.join(here, 'node_modules/typescript/bin/tsc');

for (const config of ['tsconfig.dts.json', 'tsconfig.json']) {
  test(`tsc --noEmit -p types/${config}`, () => {
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'types', config)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
}
