// Sync mode under simulated power loss: a fault-injecting file layer drops every write that was
// not fsynced, at seeded random moments; after reopening, every write reported durable is there.
// The layer sits under the production I/O executor and its routing (`fileSystem: faulty` below:
// StorageEngine.open puts it under IoExecutor via inProcessBackend), and each run checks that
// both routes (HERE and POOL) carried its writes.

import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry } from '../../src/raft/types.js';
import { StorageEngine, type StorageEngineOptions } from '../../src/storage/index.js';
import { FaultyFileSystem } from './fault-fs.js';
import { entryProblem, makeEntries, removeDir, TestLog, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** The terms of a log, index i at terms[i - 1]; a write cuts at its first index and appends. */
function applyWrite(terms: readonly number[], entries: readonly Entry[]): number[] {
  const next = terms.slice(0, entries[0]!.index - 1);
  for (const entry of entries) next.push(entry.term);
  return next;
}

interface Candidate {
  terms: number[];
  /** The recovered log may be this state cut back to no shorter than minLength. */
  minLength: number;
}

function matches(candidate: Candidate, terms: readonly number[]): boolean {
  if (terms.length < candidate.minLength || terms.length > candidate.terms.length) return false;
  return terms.every((term, i) => term === candidate.terms[i]);
}

async function readAll(t: TestLog, lastIndex: number): Promise<Entry[]> {
  const out: Entry[] = [];
  for (let lo = 1; lo <= lastIndex; ) {
    const got = await t.log.readEntries(lo, lastIndex + 1, 1 << 20);
    out.push(...got);
    lo += got.length;
  }
  return out;
}

const ROUNDS = 15;

/** What the test knows of one log across rounds. */
interface LogModel {
  candidates: Candidate[];
  /** This round: the state after each write (states[0]: as recovered), and the cut each made. */
  states: number[][];
  cutAt: number[];
  lastReported: number;
  term: number;
}

interface RoundsOptions {
  seed: number;
  logs: number;
  engine: Omit<StorageEngineOptions, 'dataDir' | 'fileSystem'>;
}

/**
 * Rounds of: open every log (checking it came back in a legal state), write to random logs in
 * shared driver turns (so one WAL window holds many logs' frames), some writes cutting the suffix
 * with a higher term, then crash at a random moment and drop every write that was not fsynced.
 */
async function runRounds({ seed, logs, engine: engineOptions }: RoundsOptions): Promise<void> {
  const random = new SeededRandom(seed);
  const dir = tempDir('power');
  dirs.push(dir);
  // The states a log may legally come back in: after its last reported write or any later one;
  // or, while a later write cuts the suffix at c, the state before it cut back to no less than
  // c - 1 (the entries it replaces were never committed: Raft only cuts uncommitted ones).
  const models: LogModel[] = [];
  for (let l = 0; l < logs; l++)
    models.push({
      candidates: [{ terms: [], minLength: 0 }],
      states: [],
      cutAt: [],
      lastReported: 0,
      term: 0,
    });
  let lostWrites = 0;
  let reportedWrites = 0;
  const routes = { here: 0, pool: 0, threadpoolSyncs: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const faulty = new FaultyFileSystem();
    const engine = await StorageEngine.open({ dataDir: dir, fileSystem: faulty, ...engineOptions });
    const opened: TestLog[] = [];
    for (let l = 0; l < logs; l++) {
      const t = await new TestLog(engine).open(`g-${l}`, { mode: 'sync', onError: () => {} });
      opened.push(t);
      const model = models[l]!;
      const terms: number[] = [];
      for (let i = 1; i <= t.log.lastIndex(); i++) terms.push(t.log.term(i));
      const match = model.candidates.findIndex((c) => matches(c, terms));
      expect(
        match,
        `round ${round}, seed ${seed}, log ${l}: recovered terms ${terms.join(',')}; legal: ${model.candidates.map((c) => `${c.terms.join(',')} (>= ${c.minLength})`).join(' | ')}`,
      ).toBeGreaterThanOrEqual(0);
      // Writes lost: the state came back short of the last write made before the crash.
      if (!matches(model.candidates.at(-1)!, terms) || terms.length < model.candidates.at(-1)!.terms.length)
        lostWrites++;
      for (const entry of await readAll(t, terms.length)) expect(entryProblem(entry)).toBeNull();
      model.states = [terms];
      model.cutAt = [0];
      model.lastReported = 0;
      model.term = (terms.at(-1) ?? 0) + 1;
    }
    let crashed = false;
    const turns = 5 + random.int(30);
    for (let turn = 0; turn < turns; turn++) {
      const writes = [];
      for (let l = 0; l < logs; l++) {
        if (logs > 1 && random.int(3) === 0) continue;
        const model = models[l]!;
        const current = model.states.at(-1)!;
        let first = current.length + 1;
        if (current.length > 3 && random.int(5) === 0) {
          first = current.length - random.int(Math.min(current.length - 1, 8));
          model.term++;
        }
        const batch = makeEntries(first, 1 + random.int(6), model.term, 20 + random.int(200));
        model.states.push(applyWrite(current, batch));
        model.cutAt.push(first <= current.length ? first : 0);
        const w = model.states.length - 1;
        const { write, durable } = opened[l]!.prepare(batch);
        writes.push(write);
        void durable.then(() => {
          if (!crashed) model.lastReported = Math.max(model.lastReported, w);
        });
      }
      if (writes.length > 0) engine.write(writes);
      if (random.int(3) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const waitTurns = random.int(40);
    for (let i = 0; i < waitTurns; i++) await new Promise((resolve) => setImmediate(resolve));
    crashed = true;
    faulty.crash();
    const io = engine.ioStats();
    routes.here += io.smallWrites;
    routes.pool += io.poolTasks;
    routes.threadpoolSyncs += io.threadpoolSyncs;
    await engine.abandon();
    faulty.powerLoss();
    for (const model of models) {
      // Legal: a prefix of any state from the last reported write on that keeps what was reported
      // durable, except what any write since then cut (Raft only ever cuts uncommitted entries).
      // A prefix, because what was never reported durable may be cut back (a torn frame, or
      // entries past the last point that the WAL or a segment fdatasync made durable).
      let minLength = model.states[model.lastReported]!.length;
      for (let w = model.lastReported + 1; w < model.states.length; w++)
        if (model.cutAt[w]! > 0) minLength = Math.min(minLength, model.cutAt[w]! - 1);
      model.candidates = [];
      for (let w = model.lastReported; w < model.states.length; w++)
        model.candidates.push({ terms: model.states[w]!, minLength });
      reportedWrites += model.lastReported;
    }
  }
  // The rounds must have exercised both outcomes: unsynced writes lost, and durable ones kept.
  expect(lostWrites).toBeGreaterThan(0);
  expect(reportedWrites).toBeGreaterThan(ROUNDS);
  // ...through both routes of the production executor.
  expect(routes.here).toBeGreaterThan(0);
  expect(routes.threadpoolSyncs).toBeGreaterThan(0);
  expect(routes.pool).toBeGreaterThan(0);
}

describe('sync mode under power loss', () => {
  it.each([20261123, 7, 424242])(
    'keeps every write reported durable (seed %i), with suffix cuts',
    async (seed) => {
      await runRounds({ seed, logs: 1, engine: { segmentBytesMax: 2048 } });
    },
  );

  // Many logs per WAL window; checkpoints every few ms (segment syncs, then WAL files deleted);
  // the larger writes bypass the WAL with their own fdatasync and a "synced" record.
  it.each([20261123, 99])(
    'keeps every write reported durable with 12 logs sharing WAL windows and checkpoints (seed %i)',
    async (seed) => {
      await runRounds({
        seed,
        logs: 12,
        engine: {
          segmentBytesMax: 2048,
          flushIntervalMs: 4,
          walCheckpointIntervalMs: 3,
          walDirectBytesMin: 900,
        },
      });
    },
  );
});
