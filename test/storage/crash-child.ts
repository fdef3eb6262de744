// A child process for the crash test: opens the storage engine (the built dist/ code, so that a
// restart costs little), reports what it recovered, then appends without pause and tells the
// parent over IPC about every write as soon as it is durable, until the parent SIGKILLs it.
// The test transpiles this file (and helpers.ts) to plain JS so a restart needs no loader.
// argv: storageIndexUrl dataDir mode seed [logs]. With several logs, every turn writes to each of
// them in one engine.write (in sync mode: their frames share WAL windows).

import type * as StorageModule from '../../src/storage/index.js';
import { entryProblem, makeEntries } from './helpers.js';

const [storageUrl, dataDir, mode, seedText, logsText] = process.argv.slice(2) as [
  string,
  string,
  'sync' | 'async' | 'memory',
  string,
  string | undefined,
];
const logCount = Number(logsText ?? 1);
const storage = (await import(storageUrl)) as typeof StorageModule;

let seed = Number(seedText) >>> 0;
function random(maxExclusive: number): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed % maxExclusive;
}

const send = (message: unknown): void => {
  process.send?.(message);
};

const engine = await storage.StorageEngine.open({
  dataDir,
  ioThreads: 1,
  segmentBytesMax: 256 * 1024,
  flushIntervalMs: 50,
  // Several logs: checkpoints (and WAL file deletions) within a life, and some writes large
  // enough to take their own fdatasync, so that kills land in the middle of both.
  ...(logCount > 1 ? { walCheckpointIntervalMs: 20, walDirectBytesMin: 8 * 1024 } : {}),
});
/** persistId -> [first index, count, term, log number] */
const pending = new Map<number, [number, number, number, number]>();
const logs: Awaited<ReturnType<typeof engine.openLog>>[] = [];
for (let l = 0; l < logCount; l++) {
  logs.push(
    await engine.openLog(l === 0 ? 'crash' : `crash-${l}`, {
      mode,
      onPersisted: (persistId) => {
        const write = pending.get(persistId);
        pending.delete(persistId);
        if (write) send({ durable: write });
      },
    }),
  );
}

// What came back, per log: terms as runs, problems in payloads, the hard state.
const recovered = [];
for (const log of logs) {
  const lastIndex = log.lastIndex();
  const runs: number[] = [];
  let problems = 0;
  for (let lo = log.firstIndex(); lo <= lastIndex; ) {
    const entries = await log.readEntries(lo, lastIndex + 1, 4 * 1024 * 1024);
    for (const entry of entries) {
      if (entryProblem(entry) !== null) problems++;
      if (runs.length === 0 || runs[runs.length - 1] !== entry.term) runs.push(entry.index, entry.term);
    }
    lo += entries.length;
  }
  const { hardState } = log.initialState();
  recovered.push({ lastIndex, runs, problems, hardState, mayHaveLostTail: log.mayHaveLostTail });
}
send({ recovered });

// Append forever: a few writes per log per turn, up to 64 in flight, a term change now and then.
const next = recovered.map((r) => r.lastIndex + 1);
const terms = recovered.map(
  (r) => Math.max(r.hardState.term, r.runs.length > 0 ? r.runs[r.runs.length - 1]! : 0) + 1,
);
let persistId = 1;
function turn(): void {
  const writes = [];
  for (let l = 0; l < logCount; l++) {
    for (let w = 0; w < 1 + random(3) && pending.size < 64 * logCount; w++) {
      let hardState = null;
      if (random(20) === 0) {
        terms[l]!++;
        hardState = { term: terms[l]!, vote: 1, commit: 0 };
      }
      const count = 1 + random(8);
      const entries = makeEntries(next[l]!, count, terms[l]!, 16 + random(600));
      pending.set(persistId, [next[l]!, count, terms[l]!, l]);
      writes.push({
        log: logs[l]!,
        entries,
        hardState,
        snapshot: null,
        mustSync: true,
        persistId: persistId++,
      });
      next[l]! += count;
    }
  }
  if (writes.length > 0) engine.write(writes);
  setImmediate(turn);
}
turn();
