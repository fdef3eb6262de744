// Sync mode under simulated power loss: a fault-injecting file layer drops every write that was
// not fsynced, at seeded random moments; after reopening, every write reported durable is there.

import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry } from '../../src/raft/types.js';
import { StorageEngine } from '../../src/storage/index.js';
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

describe('sync mode under power loss', () => {
  it.each([20261123, 7, 424242])(
    'keeps every write reported durable (seed %i), with suffix cuts',
    async (seed) => {
      const random = new SeededRandom(seed);
      const dir = tempDir('power');
      dirs.push(dir);
      // The states the log may legally come back in: after the last reported write or any later one;
      // or, while a later write cuts the suffix at c, the state before it cut back to no less than
      // c - 1 (the entries it replaces were never committed: Raft only cuts uncommitted ones).
      let candidates: Candidate[] = [{ terms: [], minLength: 0 }];
      let lostWrites = 0;
      let reportedWrites = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const faulty = new FaultyFileSystem();
        const engine = await StorageEngine.open({ dataDir: dir, fileSystem: faulty, segmentBytesMax: 2048 });
        const t = await new TestLog(engine).open('g', { mode: 'sync', onError: () => {} });
        const terms: number[] = [];
        for (let i = 1; i <= t.log.lastIndex(); i++) terms.push(t.log.term(i));
        const match = candidates.findIndex((c) => matches(c, terms));
        expect(
          match,
          `round ${round}, seed ${seed}: recovered terms ${terms.join(',')}`,
        ).toBeGreaterThanOrEqual(0);
        lostWrites += candidates.length - 1 - match;
        for (const entry of await readAll(t, terms.length)) expect(entryProblem(entry)).toBeNull();

        // Writes, some cutting the suffix with a higher term, then a crash at a random moment.
        const states: number[][] = [terms];
        const cutAt: number[] = [0];
        let lastReported = 0;
        let crashed = false;
        let term = (terms.at(-1) ?? 0) + 1;
        const writes = 5 + random.int(30);
        for (let w = 1; w <= writes; w++) {
          const model = states[w - 1]!;
          let first = model.length + 1;
          if (model.length > 3 && random.int(5) === 0) {
            first = model.length - random.int(Math.min(model.length - 1, 8));
            term++;
          }
          const batch = makeEntries(first, 1 + random.int(6), term, 20 + random.int(200));
          states.push(applyWrite(model, batch));
          cutAt.push(first <= model.length ? first : 0);
          void t.write(batch).then(() => {
            if (!crashed) lastReported = Math.max(lastReported, w);
          });
          if (random.int(3) === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        const turns = random.int(40);
        for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
        crashed = true;
        faulty.crash();
        await engine.abandon();
        faulty.powerLoss();
        candidates = [];
        for (let w = lastReported; w < states.length; w++) {
          candidates.push({ terms: states[w]!, minLength: states[w]!.length });
          const next = cutAt[w + 1] ?? 0;
          if (next > 0) candidates.push({ terms: states[w]!, minLength: next - 1 });
        }
        reportedWrites += lastReported;
      }
      // The rounds must have exercised both outcomes: unsynced writes lost, and durable ones kept.
      expect(lostWrites).toBeGreaterThan(0);
      expect(reportedWrites).toBeGreaterThan(ROUNDS);
    },
  );
});
