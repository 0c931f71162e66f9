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

// An import allocates a great deal of short-lived garbage (a record parsed, checked, written and
// dropped, a million times). With a small young generation V8 collects it more often and the
// process stays far smaller (about 240 MB instead of 350 MB over a million accounts), at no cost
// in speed measured; the flag can only be given when Node starts, so the import replaces this
// process with one that has it (process.execve, Node 22.15 and 23.11), or else runs in a child,
// whose parent then keeps some 45 MB of its own while it waits.
if (process.argv[2] === 'import' && !process.execArgv.some((flag) => flag.startsWith('--max-semi-space-size'))) {
  const args = ['--max-semi-space-size=4', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  if (typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...args], process.env);
  const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));

// The server keeps its memory small with a setting a running process cannot change, so `start`
// replaces itself (same process id, no parent left waiting) with one that has it, unless the
// operator set it already: a young generation of 8 MB semi-spaces. V8's default lets garbage pile
// up to some 180 MB of heap under sign-in load before collecting it, for no measurable gain in
// speed. (glibc's mmap threshold is left to adjust itself: fixed at 128 KB it gave back argon2's
// 19 MB blocks after each hash, some 50 MB less at peak, but every hash then faulted its memory in
// afresh and sign-ins were a fifth slower.)
// process.execve arrived in Node 22.15 and 23.11; without it the server runs with the defaults.
if (process.argv[2] === 'start' && typeof process.execve === 'function') {
  const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (!given.includes('--max-semi-space-size')) {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, '--max-semi-space-size=8', fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
  }
}
if (process.features.typescript) {
  await import(main);
} else {
  const run = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', main, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
