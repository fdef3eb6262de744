// bench:raft — commit throughput of the pure Raft core: a 3-node cluster in one process, no I/O,
// 100-byte entries proposed in batches. Prints JSON, then a table. Goal: 500,000 entries/s.
//
//   npm run bench:raft [-- --seconds 3 --batches 1,16,256,1024]

import { parseArgs } from 'node:util';
import { MemoryStorage, type Message, RawNode, SeededRandom, StateRole } from '../src/raft/index.js';

const ENTRY_BYTES = 100;
const COMPACT_EVERY_ENTRIES = 200_000;
const ENTRIES_PER_TURN = 1024;

interface BenchNode {
  raw: RawNode;
  storage: MemoryStorage;
  appliedIndex: number;
}

interface CaseResult {
  batchEntries: number;
  entries: number;
  seconds: number;
  entriesPerSecond: number;
  cpuMicrosPerEntry: number;
}

function buildCluster(): BenchNode[] {
  const voters = [1, 2, 3];
  return voters.map((id) => {
    const storage = new MemoryStorage();
    const raw = new RawNode({
      id,
      storage,
      random: new SeededRandom(id),
      initialState: { hardState: storage.hardState, confState: { voters, learners: [] } },
      config: { maxInflightMessages: 4096, maxUncommittedBytes: 0 },
    });
    return { raw, storage, appliedIndex: 0 };
  });
}

/** Runs every node's Ready loop and delivers messages until the cluster is quiet. */
function pump(nodes: BenchNode[], inbox: Message[][]): void {
  for (let round = 0; round < 1_000_000; round++) {
    let moved = false;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      while (node.raw.hasReady()) {
        moved = true;
        const ready = node.raw.ready();
        node.storage.append(ready.entries);
        if (ready.hardState) node.storage.hardState = ready.hardState;
        for (const m of ready.messages) inbox[m.to - 1]!.push(m);
        const committed = ready.committedEntries;
        if (committed.length > 0) node.appliedIndex = committed[committed.length - 1]!.index;
        node.raw.advance(ready);
        if (ready.persistId !== 0) node.raw.reportPersisted(ready.persistId);
      }
    }
    for (let i = 0; i < nodes.length; i++) {
      const queue = inbox[i]!;
      if (queue.length === 0) continue;
      moved = true;
      inbox[i] = [];
      for (const m of queue) nodes[i]!.raw.step(m);
    }
    if (!moved) return;
  }
  throw new Error('cluster did not quiesce');
}

function compact(nodes: BenchNode[]): void {
  for (const node of nodes) {
    const index = node.appliedIndex;
    if (index - node.storage.firstIndex() < COMPACT_EVERY_ENTRIES) continue;
    node.storage.createSnapshot(index, node.raw.status().confState, new Uint8Array(0));
    node.storage.compact(index);
  }
}

function runCase(batchEntries: number, seconds: number): CaseResult {
  const nodes = buildCluster();
  const inbox: Message[][] = nodes.map(() => []);
  nodes[0]!.raw.campaign();
  pump(nodes, inbox);
  const leader = nodes.find((n) => n.raw.role === StateRole.Leader);
  if (!leader) throw new Error('no leader elected');
  const payload = new Uint8Array(ENTRY_BYTES);
  const batch = Array.from({ length: batchEntries }, () => payload);
  // Each driver turn proposes ENTRIES_PER_TURN entries, in proposeBatch calls of batchEntries.
  const batchesPerPump = Math.max(1, Math.floor(ENTRIES_PER_TURN / batchEntries));
  const startIndex = leader.appliedIndex;
  const cpuStart = process.cpuUsage();
  const startMs = performance.now();
  const deadlineMs = startMs + seconds * 1000;
  while (performance.now() < deadlineMs) {
    for (let i = 0; i < batchesPerPump; i++) leader.raw.proposeBatch(batch);
    pump(nodes, inbox);
    compact(nodes);
  }
  const elapsedSeconds = (performance.now() - startMs) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  // Followers learn the last commit index from the next heartbeat.
  leader.raw.tick();
  pump(nodes, inbox);
  for (const node of nodes) {
    if (node.appliedIndex !== leader.appliedIndex) throw new Error('replicas did not converge');
  }
  const entries = leader.appliedIndex - startIndex;
  return {
    batchEntries,
    entries,
    seconds: round(elapsedSeconds, 3),
    entriesPerSecond: Math.round(entries / elapsedSeconds),
    cpuMicrosPerEntry: round((cpu.user + cpu.system) / entries, 3),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      batches: { type: 'string', default: '1,16,256,1024' },
    },
  });
  const seconds = Number(values.seconds);
  const batches = values.batches.split(',').map(Number);
  if (!(seconds > 0 && seconds <= 60) || batches.some((b) => !(b >= 1 && b <= 65_536))) {
    console.error('bench:raft: --seconds must be in (0, 60] and --batches a list of sizes in [1, 65536]');
    process.exit(2);
  }
  runCase(256, 0.5); // warm up the JIT
  const results = batches.map((b) => runCase(b, seconds));
  const report = {
    bench: 'raft',
    description:
      '3-node in-process cluster, no I/O, 100-byte entries, all nodes on one core; each driver turn ' +
      `proposes ${ENTRIES_PER_TURN} entries (or one batch, if larger) in proposeBatch calls of batchEntries`,
    node: process.version,
    date: new Date().toISOString(),
    results,
  };
  console.log(JSON.stringify(report, null, 2));
  console.log('');
  console.log('batch entries | entries/s  | CPU µs/entry (3 replicas)');
  console.log('------------- | ---------- | -------------------------');
  for (const r of results) {
    console.log(
      `${String(r.batchEntries).padStart(13)} | ${String(r.entriesPerSecond).padStart(10)} | ${r.cpuMicrosPerEntry}`,
    );
  }
}

main();
