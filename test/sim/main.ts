// The simulator's command line: runs a range of swarm seeds (split across child processes) and
// reports every violation with its seed, invariant and trace; or replays one seed exactly.
//
//   npm run sim -- --seeds 2000            seeds 1..2000; ends with "sim: 2000 seeds, 0 violations"
//   npm run sim -- --seeds 500 --start 7000
//   npm run sim -- --seed 123 --trace      one seed, every event printed

import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { describeParams, runSeed, type SeedResult } from './swarm.js';

/** What a child process reports for one seed (errors do not survive structured cloning). */
interface SeedReport {
  seed: number;
  invariant: string | null;
  detail: string;
  timeMs: number;
  trace: string[];
  params: string;
  virtualMs: number;
  acked: number;
  readsStarted: number;
  readsAnswered: number;
  digest: number;
}

interface CliOptions {
  seeds?: number;
  start: number;
  seed?: number;
  trace?: boolean;
  workers: number;
  fullTraces: number;
  child?: boolean;
  stride: number;
}

/** Violations printed with their whole trace; the rest get one line each. */
const DEFAULT_FULL_TRACES = 3;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function toReport(r: SeedResult): SeedReport {
  const v = r.violation;
  return {
    seed: r.seed,
    invariant: v ? ('invariant' in v ? v.invariant : 'harness') : null,
    detail: v ? v.message : '',
    timeMs: v ? v.timeMs : 0,
    trace: v ? v.trace : [],
    params: describeParams(r.params),
    virtualMs: r.virtualMs,
    acked: r.acked,
    readsStarted: r.readsStarted,
    readsAnswered: r.readsAnswered,
    digest: r.digest,
  };
}

function printViolation(report: SeedReport, withTrace: boolean): void {
  console.log(`VIOLATION seed ${report.seed}: ${report.detail}`);
  console.log(`  at ${report.timeMs.toFixed(3)} ms virtual; ${report.params}`);
  console.log(`  replay: npm run sim -- --seed ${report.seed} --trace`);
  if (!withTrace) return;
  console.log(`  last ${report.trace.length} events:`);
  for (const line of report.trace) console.log(`  ${line}`);
}

/** Child: runs seeds start+offset, start+offset+stride, ... below start+count; reports each. */
function runChild(start: number, count: number, stride: number): void {
  for (let seed = start; seed < start + count; seed += stride) {
    process.send!(toReport(runSeed(seed)));
  }
  process.disconnect();
}

function runOne(seed: number, trace: boolean): number {
  const result = runSeed(seed, trace ? (line) => console.log(line) : null);
  const report = toReport(result);
  console.log(`seed ${seed}: ${report.params}`);
  console.log(
    `seed ${seed}: ${(result.virtualMs / 1000).toFixed(1)} s virtual, ${result.proposed} proposed, ` +
      `${result.acked} acknowledged, ${result.readsAnswered}/${result.readsStarted} reads answered, ` +
      `${result.crashes} crashes, ${result.partitions} partitions, ` +
      `${result.messages} messages, digest ${result.digest.toString(16)}`,
  );
  if (report.invariant) {
    printViolation(report, !trace);
    return 1;
  }
  console.log(`sim: 1 seeds, 0 violations`);
  return 0;
}

function spawnChild(
  offset: number,
  options: CliOptions,
  count: number,
  workers: number,
  onReport: (r: SeedReport) => void,
): Promise<void> {
  const args = ['--child', '--start', String(options.start + offset), '--seeds', String(count - offset)];
  const child = fork(fileURLToPath(import.meta.url), [...args, '--stride', String(workers)]);
  child.on('message', (message) => onReport(message as SeedReport));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`worker ${offset} exited with ${code}`)),
    );
  });
}

async function runMany(options: CliOptions): Promise<number> {
  const count = options.seeds ?? 100;
  const workers = Math.max(1, Math.min(options.workers, count));
  const started = performance.now();
  const reports: SeedReport[] = [];
  const children: Promise<void>[] = [];
  for (let offset = 0; offset < workers; offset++) {
    children.push(spawnChild(offset, options, count, workers, (r) => reports.push(r)));
  }
  await Promise.all(children);
  if (reports.length !== count) throw new Error(`expected ${count} seed reports, got ${reports.length}`);
  reports.sort((a, b) => a.seed - b.seed);
  const violations = reports.filter((r) => r.invariant !== null);
  for (let i = 0; i < violations.length; i++) printViolation(violations[i]!, i < options.fullTraces);
  summarize(reports, violations, started, workers);
  console.log(`sim: ${count} seeds, ${violations.length} violations`);
  return violations.length > 0 ? 1 : 0;
}

function summarize(
  reports: SeedReport[],
  violations: SeedReport[],
  startedMs: number,
  workers: number,
): void {
  const byInvariant = new Map<string, number[]>();
  for (const v of violations)
    byInvariant.set(v.invariant!, [...(byInvariant.get(v.invariant!) ?? []), v.seed]);
  for (const [invariant, seeds] of byInvariant) {
    console.log(
      `  ${invariant}: ${seeds.length} seeds (${seeds.slice(0, 20).join(', ')}${seeds.length > 20 ? ', ...' : ''})`,
    );
  }
  const virtualS = reports.reduce((sum, r) => sum + r.virtualMs, 0) / 1000;
  const acked = reports.reduce((sum, r) => sum + r.acked, 0);
  const reads = reports.reduce((sum, r) => sum + r.readsAnswered, 0);
  const wallS = (performance.now() - startedMs) / 1000;
  // Wall time goes to stderr so that stdout depends on the seeds only.
  console.error(
    `sim: ${virtualS.toFixed(0)} s virtual, ${acked} acknowledged proposals, ${reads} linearizable reads checked, ` +
      `${wallS.toFixed(1)} s wall on ${workers} workers`,
  );
}

async function main(): Promise<number> {
  const program = new Command()
    .name('sim')
    .description('Deterministic simulation of raftlog Raft clusters')
    .option('--seeds <count>', 'how many seeds to run', positiveInt)
    .option('--start <seed>', 'first seed', positiveInt, 1)
    .option('--seed <seed>', 'run one seed and print its report', positiveInt)
    .option('--trace', 'with --seed: print every event as it happens')
    .option('--workers <count>', 'child processes', positiveInt, Math.min(2, availableParallelism()))
    .option('--full-traces <count>', 'violations printed with their trace', positiveInt, DEFAULT_FULL_TRACES)
    .addOption(new Command().createOption('--child').hideHelp())
    .addOption(new Command().createOption('--stride <n>').argParser(positiveInt).default(1).hideHelp())
    .parse(process.argv);
  const options = program.opts<CliOptions>();
  if (options.child) {
    runChild(options.start, options.seeds ?? 0, options.stride);
    return 0;
  }
  if (options.seed !== undefined) return runOne(options.seed, options.trace === true);
  return runMany(options);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  },
);
