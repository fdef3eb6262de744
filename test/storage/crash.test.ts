// Crash tests with real processes: a child appends in each mode and reports every write it saw
// become durable; the parent SIGKILLs it at seeded random moments and checks, on each restart,
// that every reported entry is there and intact (sync and async), or that memory mode came back
// empty with its hard state (term) kept.

import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/random.js';
import { removeDir, tempDir, waitFor } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STORAGE_URL = pathToFileURL(path.join(ROOT, 'dist/storage/index.js')).href;
const children = new Set<ChildProcess>();
const dirs: string[] = [];
let childPath = '';

/**
 * Transpiles the child and its helpers to plain ESM in a temp directory: a child started through
 * a TypeScript loader takes about 0.5 s longer to start, and this test starts more than fifty.
 */
function transpileChild(): string {
  const out = tempDir('crash-child');
  dirs.push(out);
  fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');
  for (const name of ['crash-child', 'helpers']) {
    const source = fs.readFileSync(fileURLToPath(new URL(`./${name}.ts`, import.meta.url)), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    fs.writeFileSync(path.join(out, `${name}.js`), outputText);
  }
  return path.join(out, 'crash-child.js');
}

/** The child runs the built engine: build it when dist/ is missing or older than the sources. */
function ensureBuilt(): void {
  const built = path.join(ROOT, 'dist/storage/engine.js');
  const sources = path.join(ROOT, 'src/storage');
  const newest = Math.max(
    ...fs.readdirSync(sources).map((name) => fs.statSync(path.join(sources, name)).mtimeMs),
  );
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newest) return;
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
    {
      cwd: ROOT,
      timeout: 120_000,
      stdio: 'inherit',
    },
  );
}

beforeAll(() => {
  ensureBuilt();
  childPath = transpileChild();
}, 150_000);

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  for (const dir of dirs) removeDir(dir);
});

interface Recovered {
  lastIndex: number;
  runs: number[];
  problems: number;
  hardState: { term: number; vote: number; commit: number };
  mayHaveLostTail: boolean;
}

/** Term of `index` from [startIndex, term] runs. */
function termAt(runs: readonly number[], index: number): number {
  let term = -1;
  for (let i = 0; i < runs.length && runs[i]! <= index; i += 2) term = runs[i + 1]!;
  return term;
}

/**
 * Runs one life of the child: waits for its recovery report and checks it against everything
 * reported durable before, lets it append for `appendMs`, then kills it with SIGKILL.
 */
async function life(
  dir: string,
  mode: string,
  seed: number,
  appendMs: number,
  durable: Map<number, number>[],
  where: string,
): Promise<Recovered[]> {
  const child = fork(childPath, [STORAGE_URL, dir, mode, String(seed), String(durable.length)], {
    cwd: ROOT,
    execArgv: [],
    stdio: 'pipe',
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let recovered: Recovered[] | null = null;
  let problem: unknown = null;
  child.on('message', (message: { recovered?: Recovered[]; durable?: [number, number, number, number] }) => {
    if (message.recovered) {
      // Checked here, synchronously: this life's durable reports come in right after.
      recovered = message.recovered;
      try {
        for (let l = 0; l < durable.length; l++)
          check(mode, recovered[l]!, durable[l]!, durable.length > 1 ? `${where} log ${l}` : where);
      } catch (error) {
        problem = error;
      }
      // A memory log restarts empty, appends from 1 again.
      if (mode === 'memory') for (const map of durable) map.clear();
    }
    if (message.durable) {
      const [first, count, term, l] = message.durable;
      for (let i = 0; i < count; i++) durable[l]!.set(first + i, term);
    }
  });
  await waitFor(() => recovered !== null || child.exitCode !== null, 20_000, `child recovery (${stderr})`);
  expect(recovered, `child exited early: ${stderr}`).not.toBeNull();
  if (problem !== null) {
    process.kill(child.pid!, 'SIGKILL');
    throw problem;
  }
  const deadline = Date.now() + appendMs;
  await waitFor(
    () => Date.now() >= deadline || child.exitCode !== null,
    appendMs + 5000,
    'the append window',
  );
  process.kill(child.pid!, 'SIGKILL');
  await waitFor(() => child.exitCode !== null || child.signalCode !== null, 5000, 'the child to die');
  children.delete(child);
  expect(child.signalCode, stderr).toBe('SIGKILL');
  return recovered!;
}

function check(mode: string, recovered: Recovered, durable: Map<number, number>, where: string): void {
  expect(recovered.problems, `${where}: corrupt payloads`).toBe(0);
  if (mode === 'memory') {
    expect(recovered.lastIndex, where).toBe(0);
    return;
  }
  const missing: number[] = [];
  for (const [index, term] of durable) {
    if (index > recovered.lastIndex || termAt(recovered.runs, index) !== term) missing.push(index);
  }
  const detail = `recovered last index ${recovered.lastIndex}, runs ${recovered.runs.slice(-6).join(',')}`;
  expect(
    missing.slice(0, 10),
    `${where}: ${missing.length} durable entries missing or changed (${detail})`,
  ).toEqual([]);
}

// 60 kills in all. The cases run side by side: each life is mostly a child starting up. The last
// one writes 8 sync logs per driver turn: their frames share WAL windows, checkpoints delete WAL
// files, and every restart replays the WAL.
const CASES = [
  { mode: 'sync', logs: 1, kills: 18 },
  { mode: 'async', logs: 1, kills: 18 },
  { mode: 'memory', logs: 1, kills: 14 },
  { mode: 'sync', logs: 8, kills: 10 },
];

describe.concurrent('crash with SIGKILL', () => {
  for (const { mode, logs, kills } of CASES) {
    const what = logs > 1 ? `${mode}, ${logs} logs per window` : mode;
    it(`${what}: every entry reported durable survives ${kills} kills at random moments`, async ({
      expect,
    }) => {
      const seed = 1123 + mode.length + logs;
      const random = new SeededRandom(seed);
      const dir = tempDir(`crash-${mode}-${logs}`);
      dirs.push(dir);
      const durable: Map<number, number>[] = [];
      for (let l = 0; l < logs; l++) durable.push(new Map());
      const size = (): number => durable.reduce((sum, map) => sum + map.size, 0);
      let reportedTotal = 0;
      for (let kill = 0; kill < kills; kill++) {
        const before = mode === 'memory' ? 0 : size();
        const where = `${what} seed ${seed} restart ${kill}`;
        const recovered = await life(dir, mode, seed * 1000 + kill, 20 + random.int(200), durable, where);
        if (mode === 'memory' && kill > 0) expect(recovered[0]!.mayHaveLostTail, where).toBe(true);
        reportedTotal += size() - before;
      }
      // The last life's reports are checked by one more start (not killed: it exits on its own).
      const last = await life(dir, mode, seed * 1000 + kills, 0, durable, `${what} final restart`);
      for (const recovered of last) expect(recovered.problems).toBe(0);
      expect(reportedTotal, 'the children reported durable writes').toBeGreaterThan(100);
    });
  }
});
