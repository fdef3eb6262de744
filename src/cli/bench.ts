// `raftlog bench`: the client side of the benchmark suite (bench/suite/) against a running
// cluster, for the persistence modes given; prints the suite's tables. The suite lives in bench/
// with its dev dependencies (autocannon, hdr-histogram-js, vega), so this runs from a checkout.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError } from 'commander';
import type { PersistenceMode } from '../wire/types.js';
import { CliError, describeError, EXIT_OK } from './errors.js';
import type { CliIo, TextOutput } from './io.js';
import {
  type ClientFlags,
  clientFor,
  clientOptions,
  integerIn,
  PERSISTENCE_MODES,
  serverUrl,
} from './options.js';

/** What the command needs of bench/suite/suite.ts (loaded at run time, outside src/). */
interface SuiteModule {
  runOnServer(
    url: string,
    options: {
      modes: PersistenceMode[];
      seconds: number;
      quick: boolean;
      scaling: boolean;
      outDir: string | null;
      progress: TextOutput;
      stdout: TextOutput;
    },
  ): Promise<unknown>;
}

interface BenchFlags extends ClientFlags {
  persistence: PersistenceMode[];
  seconds: number;
  scaling?: boolean;
  out?: string;
}

const SUITE_URL = new URL('../../bench/suite/suite.ts', import.meta.url);
const PROBE_TIMEOUT_MS = 3_000;

type Runner = (body: (command: Command) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function addBench(program: Command, io: CliIo, run: Runner): void {
  clientOptions(
    program
      .command('bench')
      .description('benchmark a running cluster: commit latency, throughput, latency under load, end to end')
      .option('--persistence <modes>', 'modes to measure, comma-separated', persistenceList, [
        ...PERSISTENCE_MODES,
      ])
      .option('--seconds <n>', 'seconds of each measured case', integerIn(1, 600), 10)
      .option('--scaling', 'also scale partitions, connections and SSE consumers (1 to 1,000)')
      .option('--out <dir>', 'write the results there: suite.json, tables.md and SVG charts'),
  ).action(run((command) => benchCommand(command.opts<BenchFlags>(), io)));
}

function persistenceList(value: string): PersistenceMode[] {
  const modes = value.split(',').map((m) => m.trim());
  for (const mode of modes) {
    if (!(PERSISTENCE_MODES as readonly string[]).includes(mode)) {
      throw new InvalidArgumentError(`'${mode}' is not one of ${PERSISTENCE_MODES.join(', ')}`);
    }
  }
  return [...new Set(modes)] as PersistenceMode[];
}

export async function benchCommand(flags: BenchFlags, io: CliIo): Promise<number> {
  const url = serverUrl(flags.server, io);
  await probe(flags, io, url);
  const suite = await loadSuite();
  // With --json the tables go to stderr, so that stdout is the JSON report alone.
  const report = await suite.runOnServer(url, {
    modes: flags.persistence,
    seconds: flags.seconds,
    quick: false,
    scaling: flags.scaling === true,
    outDir: flags.out ?? null,
    progress: io.stderr,
    stdout: flags.json ? io.stderr : io.stdout,
  });
  if (flags.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  return EXIT_OK;
}

/** Refuses at once, in one line, when no cluster answers at the URL. */
async function probe(flags: BenchFlags, io: CliIo, url: string): Promise<void> {
  const client = clientFor(flags.server, io);
  try {
    await client.cluster({ signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  } catch (error) {
    throw new CliError(`cannot benchmark ${url}: no raftlog cluster answers there (${describeError(error)})`);
  } finally {
    await client.close();
  }
}

/** The suite is TypeScript outside dist/: imported as is under tsx or vitest, else through tsx. */
async function loadSuite(): Promise<SuiteModule> {
  if (!existsSync(fileURLToPath(SUITE_URL))) {
    throw new CliError('raftlog bench runs from a raftlog checkout: bench/suite/ is not here');
  }
  try {
    return (await import(SUITE_URL.href)) as SuiteModule;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
  }
  const tsxApi = 'tsx/esm/api';
  try {
    const { tsImport } = (await import(tsxApi)) as {
      tsImport(url: string, parent: string): Promise<SuiteModule>;
    };
    return await tsImport(SUITE_URL.href, import.meta.url);
  } catch (error) {
    throw new CliError(`raftlog bench needs the dev dependencies (npm install): ${describeError(error)}`);
  }
}
