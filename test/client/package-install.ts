// accept:package — the package as a user gets it (issue 15, acceptance 1). In a fresh directory
// under the OS temp dir: `npm init -y`, install the tarball of `npm pack` (which builds dist/ in
// its prepare script), start `raftlog dev` from the installed package's own bin, then
//   - app.mjs: `import { Raftlog, RaftlogError } from 'raftlog'` produces and consumes, plain ESM;
//   - app.ts: the same code with types, checked by `tsc --noEmit` (the repo's typescript);
//   - raftlog/server resolves to the server entry, and the SDK entry loads no lmdb/piscina/fastify.
// Needs the npm registry (or its cache) for the package's dependencies; not part of `npm test`.
// Every step has a deadline; dev is stopped by its PID (it stops its nodes by theirs).
//
//   npm run accept:package [-- --keep]     (--keep: leave the temp directory for a look)

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const keep = process.argv.includes('--keep');
const STEP_TIMEOUT_MS = 300_000;
const READY_TIMEOUT_MS = 60_000;
const RECORDS = 30;

/** The user's program, in JavaScript and (with types) in TypeScript: one text, two extensions. */
function appSource(typed: boolean): string {
  const t = (annotation: string) => (typed ? annotation : '');
  return `import { Raftlog, RaftlogError } from 'raftlog';
${typed ? "import type { ConsumedRecord, RecordMetadata } from 'raftlog';\n" : ''}
const urls${t(': string[]')} = (process.env.RAFTLOG_URLS ?? 'http://127.0.0.1:9090').split(',');
const client = new Raftlog({ urls });
const topic = \`accept-\${process.pid}\`;
await client.createTopic({ name: topic, partitions: 3, replicationFactor: 3 });

const producer = client.producer({ idempotent: true, lingerMs: 5 });
const records = Array.from({ length: ${RECORDS} }, (_, i) => ({ key: \`user-\${i}\`, value: \`hello \${i}\` }));
const sent${t(': RecordMetadata[]')} = await producer.send(topic, records, { timeoutMs: 10_000 });
await producer.close({ timeoutMs: 10_000 });

const consumer = client.consumer({ topic, group: 'accept', from: 'earliest' });
const seen${t(': ConsumedRecord<string>[]')} = [];
for await (const record of consumer.records({ follow: false })) seen.push(record);
await consumer.close({ timeoutMs: 10_000 });

let code${t(': string | undefined')};
try {
  await client.describeTopic('no-such-topic');
} catch (error) {
  if (error instanceof RaftlogError) code = error.code;
}
await client.close();

const expected = new Set(records.map((r) => r.value));
const values = seen.map((r) => r.value);
console.log(JSON.stringify({
  sent: sent.length,
  consumed: seen.length,
  sameValues: values.length === expected.size && new Set(values).size === expected.size && values.every((v) => expected.has(v)),
  partitions: [...new Set(sent.map((m) => m.partition))].sort(),
  errorCode: code,
}));
`;
}

function step(
  what: string,
  file: string,
  args: string[],
  cwd: string,
  env?: NodeJS.ProcessEnv,
  shown = [file, ...args].join(' '),
): string {
  process.stdout.write(`\n$ ${shown}   (in ${what})\n`);
  const output = execFileSync(file, args, {
    cwd,
    encoding: 'utf8',
    timeout: STEP_TIMEOUT_MS,
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const tail = output.trim().split('\n').slice(-8).join('\n');
  if (tail) process.stdout.write(`${tail}\n`);
  return output;
}

/** A base port with it and the next two free on 127.0.0.1 right now. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const ok = await Promise.all([0, 1, 2].map((i) => portFree(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no three consecutive free ports found');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

async function waitReady(urls: string[], dev: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (dev.exitCode !== null) throw new Error(`raftlog dev exited with ${dev.exitCode}`);
    const ready = await Promise.all(
      urls.map((url) =>
        fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.status === 200,
          () => false,
        ),
      ),
    );
    if (ready.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`the dev cluster was not ready within ${READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** SIGTERM to dev by PID (it stops its nodes by theirs); SIGKILL to whatever of it is left. */
async function stopDev(dev: ChildProcess, dataDir: string): Promise<void> {
  if (dev.exitCode === null && dev.signalCode === null) {
    const exited = new Promise((r) => dev.once('exit', r));
    dev.kill('SIGTERM');
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 20_000)),
    ]);
    if (timedOut) dev.kill('SIGKILL');
  }
  // Nodes run detached; if dev died first they could outlive it. Find them by their data dir.
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(dataDir) && Number(pid) !== process.pid) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'raftlog-accept-'));
  const project = join(work, 'app');
  const dataDir = join(work, 'dev-data');
  let dev: ChildProcess | undefined;
  try {
    step('the repo', 'npm', ['pack', '--pack-destination', work], root);
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack made no tarball');
    const listing = execFileSync('tar', ['-tzf', join(work, tarball)], { encoding: 'utf8' }).split('\n');
    for (const needed of [
      'package/dist/client/index.js',
      'package/dist/client/index.d.ts',
      'package/bin/raftlog',
    ]) {
      if (!listing.includes(needed)) throw new Error(`the tarball lacks ${needed}`);
    }
    process.stdout.write(
      `${tarball}: ${listing.filter(Boolean).length} files, with dist/client/index.js, its .d.ts and bin/raftlog\n`,
    );

    execFileSync('mkdir', [project]);
    step('a fresh project', 'npm', ['init', '-y'], project);
    step('a fresh project', 'npm', ['pkg', 'set', 'type=module'], project);
    step(
      'a fresh project',
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball), '@types/node@20'],
      project,
    );

    checkSdkLoadsNoServer(project);

    const base = await freeBasePort();
    const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`);
    const bin = join(project, 'node_modules/raftlog/bin/raftlog');
    process.stdout.write(`\n$ node node_modules/raftlog/bin/raftlog dev --nodes 3 --base-port ${base}\n`);
    // Run by node directly (not npx) so that the PID we stop is dev's own.
    dev = spawn(
      process.execPath,
      [bin, 'dev', '--nodes', '3', '--base-port', String(base), '--data', dataDir],
      {
        cwd: project,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    const devOutput: string[] = [];
    dev.stdout?.on('data', (chunk: Buffer) => devOutput.push(chunk.toString()));
    dev.stderr?.on('data', (chunk: Buffer) => devOutput.push(chunk.toString()));
    try {
      await waitReady(urls, dev);
    } catch (error) {
      process.stdout.write(devOutput.join('').slice(-4000));
      throw error;
    }
    process.stdout.write(`dev cluster ready: ${urls.join(' ')}\n`);

    writeFileSync(join(project, 'app.mjs'), appSource(false));
    writeFileSync(join(project, 'app.ts'), appSource(true));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            types: ['node'],
          },
          files: ['app.ts'],
        },
        null,
        2,
      ),
    );
    const env = { ...process.env, RAFTLOG_URLS: urls.join(',') };
    const output = step('a fresh project', process.execPath, ['app.mjs'], project, env);
    const result = JSON.parse(output.trim().split('\n').at(-1)!) as {
      sent: number;
      consumed: number;
      sameValues: boolean;
      errorCode?: string;
    };
    if (result.sent !== RECORDS || result.consumed !== RECORDS || !result.sameValues) {
      throw new Error(`app.mjs: expected ${RECORDS} records produced and consumed, got ${output}`);
    }
    if (result.errorCode !== 'UNKNOWN_TOPIC') throw new Error(`app.mjs: error code ${result.errorCode}`);
    step('a fresh project', process.execPath, [tsc, '--noEmit', '-p', '.'], project);
    process.stdout.write('tsc --noEmit: no errors\n');
    process.stdout.write('\naccept:package: OK\n');
  } finally {
    if (dev) await stopDev(dev, dataDir);
    if (keep) process.stdout.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Imports the installed entries in fresh processes with a resolve hook that logs every module
 * asked for: 'raftlog' must load none of lmdb, piscina or fastify; 'raftlog/server' must (the
 * control that shows the check can see them).
 */
function checkSdkLoadsNoServer(project: string): void {
  const hooks = join(project, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.LOAD_LOG, result.url + '\\n');
  return result;
}
`,
  );
  writeFileSync(
    join(project, 'register.mjs'),
    "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
  );
  const serverModules = (specifier: string): string[] => {
    const log = join(project, 'load.log');
    writeFileSync(log, '');
    const script = `await import(${JSON.stringify(specifier)});
const { createRequire } = await import('node:module');
const { appendFileSync } = await import('node:fs');
appendFileSync(process.env.LOAD_LOG, Object.keys(createRequire(import.meta.url).cache).join('\\n') + '\\n');`;
    step(
      'a fresh project',
      process.execPath,
      ['--import', './register.mjs', '--input-type=module', '-e', script],
      project,
      { ...process.env, LOAD_LOG: log },
      `node --import ./register.mjs -e "await import('${specifier}'); <log what loaded>"`,
    );
    return readFileSync(log, 'utf8')
      .split('\n')
      .filter((m) => /\/node_modules\/(lmdb|piscina|fastify)\//.test(m));
  };
  const bySdk = serverModules('raftlog');
  process.stdout.write(`import 'raftlog' loaded ${bySdk.length} modules of lmdb, piscina or fastify\n`);
  if (bySdk.length > 0)
    throw new Error(`import 'raftlog' loaded server code: ${bySdk.slice(0, 5).join(' ')}`);
  const byServer = serverModules('raftlog/server');
  process.stdout.write(
    `import 'raftlog/server' loaded ${byServer.length} modules of lmdb, piscina or fastify\n`,
  );
  if (byServer.length === 0)
    throw new Error("import 'raftlog/server' loaded no lmdb/fastify: the check is blind");
}

await main();
