#!/usr/bin/env node
// Parley's command line. The sources are TypeScript run by Node's own type stripping, on by
// default from Node 22.18 and 23.6; older 22.x releases need the flag, so re-run with it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`Parley needs Node.js 22.12 or newer; this is ${process.version}. See README.md.`);
  process.exit(1);
}

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
if (process.features.typescript) {
  await import(main);
} else {
  const run = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', main, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
