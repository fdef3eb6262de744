// A child process for the crash test: opens the storage engine (the built dist/ code, so that a
// restart costs little), reports what it recovered, then appends without pause and tells the
// parent over IPC about every write as soon as it is durable, until the parent SIGKILLs it.
// The test transpiles this file (and helpers.ts) to plain JS so a restart needs no loader.
// argv: storageIndexUrl dataDir mode seed

import type * as StorageModule from '../../src/storage/index.js';
import { entryProblem, makeEntries } from './helpers.js';

const [storageUrl, dataDir, mode, seedText] = process.argv.slice(2) as [
  string,
  string,
  'sync' | 'async' | 'memory',
  string,
];
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
});
const pending = new Map<number, [number, number, number]>();
const log = await engine.openLog('crash', {
  mode,
  onPersisted: (persistId) => {
    const write = pending.get(persistId);
    pending.delete(persistId);
    if (write) send({ durable: write });
  },
});

// What came back: terms as runs, problems in payloads, the hard state.
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
send({ recovered: { lastIndex, runs, problems, hardState, mayHaveLostTail: log.mayHaveLostTail } });

// Append forever: a few writes per turn, up to 64 in flight, a term change now and then.
let next = lastIndex + 1;
let term = Math.max(hardState.term, runs.length > 0 ? runs[runs.length - 1]! : 0) + 1;
let persistId = 1;
function turn(): void {
  const writes = [];
  for (let w = 0; w < 1 + random(3) && pending.size < 64; w++) {
    let hardState = null;
    if (random(20) === 0) {
      term++;
      hardState = { term, vote: 1, commit: 0 };
    }
    const count = 1 + random(8);
    const entries = makeEntries(next, count, term, 16 + random(600));
    pending.set(persistId, [next, count, term]);
    writes.push({ log, entries, hardState, snapshot: null, mustSync: true, persistId: persistId++ });
    next += count;
  }
  if (writes.length > 0) engine.write(writes);
  setImmediate(turn);
}
turn();
