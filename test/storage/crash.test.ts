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
  durable: Map<number, number>,
  where: string,
): Promise<Recovered> {
  const child = fork(childPath, [STORAGE_URL, dir, mode, String(seed)], {
    cwd: ROOT,
    execArgv: [],
    stdio: 'pipe',
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let recovered: Recovered | null = null;
  let problem: unknown = null;
  child.on('message', (message: { recovered?: Recovered; durable?: [number, number, number] }) => {
    if (message.recovered) {
      // Checked here, synchronously: this life's durable reports come in right after.
      recovered = message.recovered;
      try {
        check(mode, recovered, durable, where);
      } catch (error) {
        problem = error;
      }
      if (mode === 'memory') durable.clear(); // a memory log restarts empty, appends from 1 again
    }
    if (message.durable) {
      const [first, count, term] = message.durable;
      for (let i = 0; i < count; i++) durable.set(first + i, term);
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

// 50 kills in all. The modes run side by side: each life is mostly a child starting up.
const KILLS: Record<string, number> = { sync: 18, async: 18, memory: 14 };

describe.concurrent('crash with SIGKILL', () => {
  for (const mode of ['sync', 'async', 'memory']) {
    it(`${mode}: every entry reported durable survives ${KILLS[mode]} kills at random moments`, async ({
      expect,
    }) => {
      const seed = 1123 + mode.length;
      const random = new SeededRandom(seed);
      const dir = tempDir(`crash-${mode}`);
      dirs.push(dir);
      const durable = new Map<number, number>();
      let reportedTotal = 0;
      for (let kill = 0; kill < KILLS[mode]!; kill++) {
        const before = mode === 'memory' ? 0 : durable.size;
        const where = `${mode} seed ${seed} restart ${kill}`;
        const recovered = await life(dir, mode, seed * 1000 + kill, 20 + random.int(200), durable, where);
        if (mode === 'memory' && kill > 0) expect(recovered.mayHaveLostTail, where).toBe(true);
        reportedTotal += durable.size - before;
      }
      // The last life's reports are checked by one more start (not killed: it exits on its own).
      const last = await life(dir, mode, seed * 1000 + KILLS[mode]!, 0, durable, `${mode} final restart`);
      expect(last.problems).toBe(0);
      expect(reportedTotal, 'the children reported durable writes').toBeGreaterThan(100);
    });
  }
});
