// npm run bench: the whole suite, each persistence mode on a fresh local 3-node cluster (three
// `raftlog start` processes on 127.0.0.1, stopped by PID at the end), then scaling and catch-up
// on one more fresh cluster in async mode. Results go to bench/results/<date>/ (not committed);
// --docs also copies the JSON and the charts to docs/bench/, which docs/benchmarks.md embeds.
//
//   npm run bench [-- --quick] [--seconds 10] [--persistence sync,async,memory] [--no-scaling] [--docs]
//   npm run bench -- --only catch-up [--persistence sync] [--catch-up-megabytes 500]
//
// --only catch-up runs the catch-up alone, on one fresh cluster (async unless --persistence says).

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { PersistenceMode } from '../src/wire/types.js';
import { ProcessCluster } from '../test/integration/process-cluster.js';
import { Progress } from './suite/progress.js';
import { emptyReport, finish, runCatchUp, runMode, runScaling, type SuiteOptions } from './suite/suite.js';
import { ClusterTarget } from './suite/target.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODES: PersistenceMode[] = ['sync', 'async', 'memory'];
const NODES = 3;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    persistence: { type: 'string', default: MODES.join(',') },
    'no-scaling': { type: 'boolean', default: false },
    'no-catch-up': { type: 'boolean', default: false },
    only: { type: 'string' },
    'catch-up-megabytes': { type: 'string' },
    docs: { type: 'boolean', default: false },
  },
});

function modesOf(list: string): PersistenceMode[] {
  const modes = list.split(',').map((m) => m.trim());
  for (const m of modes)
    if (!(MODES as string[]).includes(m)) throw new Error(`--persistence: unknown mode '${m}'`);
  return modes as PersistenceMode[];
}

/** A fresh cluster for `body`, destroyed (every process killed by PID, data removed) afterwards. */
async function withCluster<T>(
  mode: PersistenceMode,
  progress: Progress,
  body: (target: ClusterTarget) => Promise<T>,
): Promise<T> {
  progress.note(`starting a fresh ${NODES}-node cluster (${mode})`);
  const cluster = await ProcessCluster.create(NODES, mode);
  let target: ClusterTarget | undefined;
  try {
    cluster.startAll();
    await cluster.waitReady(60_000);
    target = await ClusterTarget.connect(cluster.node(1).url, {
      stop: async (id) => {
        await cluster.kill(id, 'SIGKILL');
      },
      start: async (id) => cluster.start(id),
    });
    return await body(target);
  } finally {
    await target?.close();
    await cluster.destroy();
  }
}

async function main(): Promise<void> {
  const startedMs = performance.now();
  const quick = args.quick === true;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  if (args.only !== undefined && args.only !== 'catch-up') throw new Error('--only: expected catch-up');
  const onlyCatchUp = args.only === 'catch-up';
  const options: SuiteOptions = {
    modes: modesOf(String(args.persistence)),
    seconds: Number(args.seconds ?? (quick ? 2 : 10)),
    quick,
    freshCluster: true,
    scaling: args['no-scaling'] !== true && !onlyCatchUp,
    catchUpMegabytes:
      args['catch-up-megabytes'] === undefined ? undefined : Number(args['catch-up-megabytes']),
    outDir: join(root, 'bench/results', `${stamp}${quick ? '-quick' : ''}`),
    progress: process.stderr,
    stdout: process.stdout,
  };
  if (!(options.seconds > 0 && options.seconds <= 600)) throw new Error('--seconds: expected 1 to 600');
  const megabytes = options.catchUpMegabytes;
  if (megabytes !== undefined && !(megabytes > 0 && megabytes <= 2000)) {
    throw new Error('--catch-up-megabytes: expected 1 to 2000');
  }
  const report = emptyReport(`local ${NODES}-node cluster, fresh per mode`, options);
  const progress = new Progress(process.stderr, 'bench');
  for (const mode of onlyCatchUp ? [] : options.modes) {
    report.modes.push(await withCluster(mode, progress, (target) => runMode(target, mode, options)));
  }
  const extraMode: PersistenceMode = options.modes.includes('async') ? 'async' : options.modes[0]!;
  if (options.scaling || args['no-catch-up'] !== true) {
    await withCluster(extraMode, progress, async (target) => {
      if (options.scaling) report.scaling = await runScaling(target, extraMode, options);
      // Catch-up is a bonus: its failure is reported, and the rest of the report still written.
      if (args['no-catch-up'] !== true) {
        report.catchUp = await runCatchUp(target, extraMode, options).catch((error) => {
          progress.note(`catch-up failed: ${(error as Error).message}`);
          return null;
        });
      }
    });
  }
  await finish(report, startedMs, options);
  if (args.docs && options.outDir) copyToDocs(options.outDir);
}

/** The JSON and the charts that docs/benchmarks.md embeds; the JSON formatted as the linter wants. */
function copyToDocs(outDir: string): void {
  const docs = join(root, 'docs/bench');
  mkdirSync(docs, { recursive: true });
  const names = readdirSync(outDir).filter((name) => name.endsWith('.svg') || name === 'suite.json');
  for (const name of names) copyFileSync(join(outDir, name), join(docs, name));
  execFileSync('npx', ['biome', 'format', '--write', join(docs, 'suite.json')], {
    cwd: root,
    stdio: 'ignore',
  });
  process.stdout.write(`copied to docs/bench/: ${names.join(', ')}\n`);
}

await main();
