// chaos:groups — issue 15, acceptance 3: group membership under churn. Three SDK consumer
// processes (consumer-child.ts) in one group read a 12-partition topic on three real `raftlog
// start` nodes while this process produces; members leave (SIGTERM: commit and leave), are
// SIGKILLed (their session expires) and come back as new members; a node is SIGKILLed and
// restarted. Seeded: --seed repeats the schedule.
//
// Checked throughout (every 100 ms):
// - from the members' own reports ({memberId, generation, partitions it reads}): no partition is
//   read by two members in one generation, over the whole run;
// - from GET /v1/groups/{group}: no partition assigned or being revoked to two members at once;
// - coverage, sampled every 20 ms: no stretch in which some partition is read by no live member
//   lasts longer than sessionTimeoutMs + 2 s; each change is followed until the group settles
//   (server and members agree on every partition, nothing being revoked), and timed.
// At the end (every member back, producer stopped): the committed offsets reach the high
// watermarks and every acknowledged record was processed at least once.
//
// Progress on stderr, JSON and a table on stdout. Exits 1 on a violation, 3 when a restarted node
// would not come up (a node's bug; the run goes on with two nodes). Bounded by --events
// (≤ 100) and --seconds-max.
//
//   npm run build && npx tsx test/chaos/group-churn.ts [--events 16 --partitions 12
//     --session-ms 3000 --seed N --seconds-max 420]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Raftlog } from '../../src/client/index.js';
import { ProcessCluster } from '../integration/process-cluster.js';
import type { ChildConfig, ChildMode, MembershipReport } from './consumer-child.js';
import {
  type Processed,
  ProcessedFile,
  pollUntil,
  progress,
  seededRandom,
  sleep,
  startWorker,
  stopWorker,
  type Worker,
} from './consumer-common.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '16' },
    partitions: { type: 'string', default: '12' },
    'session-ms': { type: 'string', default: '3000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    'seconds-max': { type: 'string', default: '420' },
  },
});
const EVENTS = Number(args.events);
const PARTITIONS = Number(args.partitions);
const SESSION_MS = Number(args['session-ms']);
const SEED = Number(args.seed);
const SECONDS_MAX = Number(args['seconds-max']);
const COVERAGE_LIMIT_MS = SESSION_MS + 2000;
const MEMBERS = 3;
const TOPIC = 'chaos-groups';
const GROUP = 'chaos-groups-group';
const MODES: ChildMode[] = ['batches', 'records-auto', 'records-commit'];
const CHILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'consumer-child.ts');
/** How often coverage (every partition read by a live member) is sampled. */
const COVERAGE_SAMPLE_MS = 20;
const SETTLE_TIMEOUT_MS = 30_000;
const TAG = 'chaos:groups';

type EventKind = 'kill-restart' | 'kill' | 'leave' | 'leave-rejoin' | 'join' | 'node';

interface Member {
  slot: number;
  run: number;
  worker: Worker;
  report: MembershipReport | undefined;
  reportAtMs: number;
}

interface EventResult {
  index: number;
  kind: EventKind;
  target: string;
  /** The longest stretch, from the change until it settled, with a partition no live member read. */
  unreadMsMax: number;
  /** From the change until the group settled (server and members agree, nothing moving). */
  settledMs: number;
  generationAfter: number;
}

interface Description {
  generation: number;
  members: Array<{
    memberId: string;
    assignments: Array<{ partition: number }>;
    revoking?: Array<{ partition: number }>;
  }>;
}

let cluster: ProcessCluster | null = null;
const members = new Map<number, Member>();

async function main(): Promise<number> {
  if (!(Number.isInteger(EVENTS) && EVENTS >= 1 && EVENTS <= 100))
    throw new Error('--events must be 1 to 100');
  const random = seededRandom(SEED);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const startedMs = Date.now();
  const deadlineMs = startedMs + SECONDS_MAX * 1000;
  progress(
    TAG,
    `seed ${SEED}: ${EVENTS} events, ${MEMBERS} members, ${PARTITIONS} partitions, session ${SESSION_MS} ms`,
  );
  cluster = await ProcessCluster.create(3, 'async');
  cluster.startAll();
  await cluster.waitReady(30_000);
  const urls = [...cluster.nodes.values()].map((n) => n.url);
  const client = new Raftlog({ urls });
  await client.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
  const work = mkdtempSync(join(tmpdir(), 'raftlog-chaos-groups-'));
  const file = new ProcessedFile(join(work, 'processed.log'));
  const violations: string[] = [];
  const violation = (message: string) => {
    if (violations.length < 50) violations.push(message);
    progress(TAG, `VIOLATION ${message}`);
  };

  // The producer: about 500 records/s until the events are over.
  const acked: Array<Set<number>> = Array.from({ length: PARTITIONS }, () => new Set());
  const producer = client.producer({ lingerMs: 5 });
  let producing = true;
  let produced = 0;
  const background = (async () => {
    while (producing && Date.now() < deadlineMs) {
      const records = Array.from({ length: 50 }, (_, i) => ({ value: `g-${produced + i}` }));
      produced += records.length;
      try {
        for (const { partition, offset } of await producer.send(TOPIC, records))
          acked[partition]!.add(offset);
      } catch (error) {
        progress(TAG, `produce failed (not counted): ${(error as Error).message}`);
      }
      await sleep(100);
    }
  })();

  // Members and their reports.
  let runs = 0;
  // A group whose members all left or expired is forgotten by the broker, and the next join starts
  // it again at generation 1: an incarnation. Only the first member of an incarnation is answered
  // generation 1 (its join answer, reported as it is applied), so a new member reporting
  // generation 1 after higher ones were seen starts a new incarnation. Owners are keyed by
  // incarnation, generation and partition; a member keeps the incarnation it joined.
  const owners = new Map<string, string>(); // `${incarnation}:${generation}:${partition}` → memberId
  const memberIncarnation = new Map<string, number>();
  const incarnationGenerationMax: number[] = [0];
  let reportsChecked = 0;
  const onReport = (member: Member) => (message: unknown) => {
    const report = message as MembershipReport;
    if (report.type !== 'membership') return;
    member.report = report;
    member.reportAtMs = Date.now();
    if (report.memberId === null || report.generation === null) return;
    reportsChecked++;
    let incarnation = memberIncarnation.get(report.memberId);
    if (incarnation === undefined) {
      incarnation = incarnationGenerationMax.length - 1;
      if (report.generation === 1 && incarnationGenerationMax[incarnation]! > 1) {
        incarnation++;
        incarnationGenerationMax.push(0);
        progress(TAG, `the group started over (generation ${report.generation}): every member had gone`);
      }
      memberIncarnation.set(report.memberId, incarnation);
    }
    incarnationGenerationMax[incarnation] = Math.max(
      incarnationGenerationMax[incarnation]!,
      report.generation,
    );
    for (const partition of report.partitions) {
      const key = `${incarnation}:${report.generation}:${partition}`;
      const owner = owners.get(key);
      if (owner === undefined) owners.set(key, report.memberId);
      else if (owner !== report.memberId) {
        violation(
          `generation ${report.generation}: partition ${partition} read by ${owner} and ${report.memberId}`,
        );
      }
    }
  };
  const start = (slot: number) => {
    const run = ++runs;
    const config: ChildConfig = {
      urls,
      topic: TOPIC,
      group: GROUP,
      out: file.path,
      run,
      mode: MODES[(run - 1) % MODES.length]!,
      sessionTimeoutMs: SESSION_MS,
      workMs: 0,
      limit: 500,
    };
    const member: Member = {
      slot,
      run,
      worker: undefined as unknown as Worker,
      report: undefined,
      reportAtMs: 0,
    };
    member.worker = startWorker(`member ${slot} (run ${run})`, CHILD_SCRIPT, config, (m) =>
      onReport(member)(m),
    );
    members.set(slot, member);
  };
  const stop = async (slot: number, signal: NodeJS.Signals) => {
    const member = members.get(slot)!;
    members.delete(slot);
    const code = await stopWorker(member.worker, signal);
    if (signal === 'SIGTERM' && code !== 0)
      violation(`member ${slot} (run ${member.run}) exited ${code} after SIGTERM`);
  };
  // Coverage: every partition read by a live member (one the script has not stopped), as the
  // members last reported. Each stretch without it is measured.
  const covered = () => {
    const read = new Set<number>();
    for (const member of members.values()) {
      if (member.worker.exitCode !== undefined) continue;
      for (const partition of member.report?.partitions ?? []) read.add(partition);
    }
    return read.size === PARTITIONS;
  };
  let unreadSinceMs: number | null = null;
  let unreadMsMax = 0;
  let unreadMsMaxInEvent = 0;
  let monitoring = true;
  const monitor = (async () => {
    while (monitoring) {
      const now = Date.now();
      if (!covered()) unreadSinceMs ??= now;
      else if (unreadSinceMs !== null) {
        const gapMs = now - unreadSinceMs;
        unreadSinceMs = null;
        unreadMsMax = Math.max(unreadMsMax, gapMs);
        unreadMsMaxInEvent = Math.max(unreadMsMaxInEvent, gapMs);
        if (gapMs > COVERAGE_LIMIT_MS)
          violation(`a partition went unread for ${gapMs} ms > ${COVERAGE_LIMIT_MS} ms`);
      }
      await sleep(COVERAGE_SAMPLE_MS);
    }
  })();

  // The server's view, polled.
  let describes = 0;
  let generation = 0;
  let generationMax = 0;
  let lastDescription: { atMs: number; description: Description } | undefined;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const askedMs = Date.now();
        const description = (await client.describeGroup(GROUP, {
          timeoutMs: 3000,
        })) as unknown as Description;
        describes++;
        generation = description.generation;
        generationMax = Math.max(generationMax, generation);
        lastDescription = { atMs: askedMs, description };
        const holder = new Map<number, string>();
        for (const m of description.members) {
          for (const { partition } of [...m.assignments, ...(m.revoking ?? [])]) {
            const other = holder.get(partition);
            if (other !== undefined)
              violation(`server: partition ${partition} held by ${other} and ${m.memberId}`);
            holder.set(partition, m.memberId);
          }
        }
      } catch {
        // A node down or an election: no verdict from this poll.
      }
      await sleep(100);
    }
  })();

  // A node that is not ready 30 s after its restart is killed and started once more; if it fails
  // again (it crashed: its output says why) it stays down, the run goes on with two nodes and no
  // more node kills, and the summary reports it (exit 3): that is the node's bug, not the group's.
  const nodeRestartTroubles: string[] = [];
  const downNodes = new Set<number>();
  const crashLine = (id: number) => {
    const output = cluster!.node(id).output.join('');
    const error = output.split('\n').find((line) => /Error/.test(line) && !line.startsWith('{'));
    return error?.trim() ?? output.slice(-300);
  };
  const restartedReady = async (target: string) => {
    const id = Number(target.split(' ')[1]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await cluster!.waitReady(30_000);
        return;
      } catch {
        nodeRestartTroubles.push(`${target}, start ${attempt}: not ready in 30 s; ${crashLine(id)}`);
        progress(TAG, `${target} not ready 30 s after start ${attempt}: ${crashLine(id)}`);
        await cluster!.kill(id, 'SIGKILL');
        if (attempt === 1) cluster!.start(id);
      }
    }
    downNodes.add(id);
    await cluster!.waitReady(30_000); // The two others.
  };
  const results: EventResult[] = [];
  /**
   * Settled: a description asked for after `sinceMs` shows every partition assigned, nothing
   * being revoked, exactly the live members, and each member reads what the server assigned it.
   */
  const settled = (sinceMs: number) => {
    if (!lastDescription || lastDescription.atMs < sinceMs) return false;
    const { description } = lastDescription;
    const live = new Map<string, number[]>();
    for (const member of members.values()) {
      if (!member.report?.memberId) return false;
      live.set(member.report.memberId, member.report.partitions);
    }
    if (description.members.length !== live.size) return false;
    let assigned = 0;
    for (const m of description.members) {
      if ((m.revoking?.length ?? 0) > 0) return false;
      const reads = live.get(m.memberId);
      const assignment = m.assignments.map((a) => a.partition).sort((a, b) => a - b);
      if (!reads || reads.join() !== assignment.join()) return false;
      assigned += assignment.length;
    }
    return assigned === PARTITIONS;
  };
  /** Waits until the group settles after a change at `sinceMs`; returns the ms it took. */
  const settle = async (sinceMs: number): Promise<number> => {
    const ok = await pollUntil(
      () => settled(sinceMs),
      Math.max(0, sinceMs + SETTLE_TIMEOUT_MS - Date.now()),
      20,
    );
    return ok ? Date.now() - sinceMs : Number.POSITIVE_INFINITY;
  };

  try {
    for (let slot = 0; slot < MEMBERS; slot++) start(slot);
    const initial = await settle(Date.now());
    if (!Number.isFinite(initial)) throw new Error('the group did not settle at the start');
    progress(TAG, `group formed: every partition read (${initial} ms)`);
    unreadMsMax = 0; // Stretches before the group first formed do not count.
    for (let index = 1; index <= EVENTS; index++) {
      if (Date.now() > deadlineMs) throw new Error(`--seconds-max ${SECONDS_MAX} reached at event ${index}`);
      const live = [...members.keys()];
      const empty = Array.from({ length: MEMBERS }, (_, s) => s).filter((s) => !members.has(s));
      const kinds: EventKind[] = ['kill-restart', 'leave-rejoin'];
      if (downNodes.size === 0) kinds.push('node'); // Never two nodes down: no quorum.
      if (live.length > 1) kinds.push('kill', 'leave');
      if (empty.length > 0) kinds.push('join', 'join');
      const kind = pick(kinds);
      let target: string;
      let changedMs = Date.now();
      unreadMsMaxInEvent = 0;
      if (kind === 'node') {
        const id = pick([...cluster.nodes.keys()]);
        target = `node ${id}`;
        changedMs = Date.now();
        await cluster.kill(id, 'SIGKILL');
        await sleep(1000 + Math.floor(random() * 2000));
        cluster.start(id);
      } else if (kind === 'join') {
        const slot = pick(empty);
        target = `member ${slot}`;
        changedMs = Date.now();
        start(slot);
      } else {
        const slot = pick(live);
        target = `member ${slot} (run ${members.get(slot)!.run})`;
        changedMs = Date.now();
        await stop(slot, kind.startsWith('kill') ? 'SIGKILL' : 'SIGTERM');
        if (kind === 'kill-restart' || kind === 'leave-rejoin') start(slot);
      }
      if (kind === 'node') await restartedReady(target);
      const settledMs = await settle(changedMs);
      if (!Number.isFinite(settledMs)) {
        violation(`event ${index} (${kind} ${target}): not settled in ${SETTLE_TIMEOUT_MS} ms`);
      }
      // A stretch still open counts up to now.
      const openMs = unreadSinceMs === null ? 0 : Date.now() - unreadSinceMs;
      const eventUnreadMs = Math.max(unreadMsMaxInEvent, openMs);
      results.push({
        index,
        kind,
        target,
        unreadMsMax: eventUnreadMs,
        settledMs,
        generationAfter: generation,
      });
      progress(
        TAG,
        `event ${index}/${EVENTS}: ${kind} ${target}: longest unread ${eventUnreadMs} ms, settled after ` +
          `${settledMs} ms; generation ${generation}, ${members.size} members`,
      );
      // Let the group work a little before the next change (a rebalance may still be finishing).
      await sleep(1000 + Math.floor(random() * 2000));
    }

    // The end: every slot filled, production stopped, everything read and committed.
    for (let slot = 0; slot < MEMBERS; slot++) if (!members.has(slot)) start(slot);
    // Every member in before the members close one by one (a member still joining then would
    // find the group empty and start it over).
    const finalSettledMs = await settle(Date.now());
    if (!Number.isFinite(finalSettledMs))
      violation(`the group did not settle at the end in ${SETTLE_TIMEOUT_MS} ms`);
    producing = false;
    await background;
    await producer.close();
    const total = acked.reduce((n, s) => n + s.size, 0);
    progress(TAG, `events done; ${total} records acknowledged; waiting for the group to process them all`);
    // Processed first (a member that commits every 25 records holds back the tail until it
    // closes), then every member closes, committing what it finished; then the offsets are judged.
    const seen: Array<Set<number>> = Array.from({ length: PARTITIONS }, () => new Set());
    const processed: Processed[] = [];
    const absorb = () => {
      for (const p of file.readNew()) {
        processed.push(p);
        seen[p.partition]!.add(p.offset);
      }
    };
    const processedAll = await pollUntil(
      () => {
        absorb();
        return acked.every((set, p) => [...set].every((offset) => seen[p]!.has(offset)));
      },
      Math.max(30_000, deadlineMs - Date.now()),
      200,
    );
    if (!processedAll) violation('the group did not process every acknowledged record in time');
    monitoring = false;
    await monitor;
    for (const slot of [...members.keys()]) await stop(slot, 'SIGTERM');
    polling = false;
    await poller;

    absorb();
    let reprocessed = processed.length;
    for (const set of seen) reprocessed -= set.size;
    let lost = 0;
    for (let p = 0; p < PARTITIONS; p++) for (const offset of acked[p]!) if (!seen[p]!.has(offset)) lost++;
    if (lost > 0) violation(`${lost} acknowledged records never processed`);
    const offsets = await client.groupOffsets(GROUP, { topic: TOPIC });
    const short = acked
      .map((set, p) => ({ p, committed: offsets.find((o) => o.partition === p)?.offset ?? 0, hw: set.size }))
      .filter((x) => x.committed !== x.hw);
    if (short.length > 0) violation(`final committed offsets ≠ high watermarks: ${JSON.stringify(short)}`);

    const byKind = Object.fromEntries(
      [...new Set(results.map((r) => r.kind))].map((kind) => {
        const of = results.filter((r) => r.kind === kind);
        return [
          kind,
          {
            count: of.length,
            unreadMsMax: Math.max(...of.map((r) => r.unreadMsMax)),
            settledMsMax: Math.max(...of.map((r) => r.settledMs)),
          },
        ];
      }),
    );
    const settledTimes = results.map((r) => r.settledMs).sort((a, b) => a - b);
    const summary = {
      seed: SEED,
      events: results.length,
      byKind,
      sessionTimeoutMs: SESSION_MS,
      coverageLimitMs: COVERAGE_LIMIT_MS,
      unreadMsMax,
      settledMsMedian: settledTimes[Math.floor(settledTimes.length / 2)] ?? 0,
      settledMsMax: settledTimes.at(-1) ?? 0,
      memberProcesses: runs,
      generations: generationMax,
      memberReportsChecked: reportsChecked,
      generationPartitionPairs: owners.size,
      groupStartedOver: incarnationGenerationMax.length - 1,
      serverDescribesChecked: describes,
      recordsAcknowledged: acked.reduce((n, s) => n + s.size, 0),
      recordsProcessed: processed.length,
      reprocessed,
      lost,
      consumerErrors: Object.fromEntries(file.errors),
      nodeRestartTroubles,
      violations,
      seconds: Math.round((Date.now() - startedMs) / 100) / 10,
      eventsDetail: results,
    };
    console.log(JSON.stringify(summary, null, 2));
    printTable(results);
    console.log(
      `\n${results.length} events (${Object.entries(byKind)
        .map(([k, v]) => `${k} ×${v.count}`)
        .join(', ')}); ${runs} member processes, generation ${generationMax}; ` +
        `${reportsChecked} member reports and ${describes} group descriptions checked: ` +
        `no partition read by two members of one generation unless listed below; ` +
        `longest stretch with a partition unread ${unreadMsMax} ms (limit ${COVERAGE_LIMIT_MS}); ` +
        `settled after each change in ${summary.settledMsMedian} ms median, ${summary.settledMsMax} ms worst; ` +
        `the group started over ${summary.groupStartedOver} times (every member gone at once); ` +
        `${nodeRestartTroubles.length} node starts not ready in 30 s, ${downNodes.size} node(s) left down; ` +
        `${summary.recordsAcknowledged} acknowledged, ${lost} lost, ${reprocessed} processed twice; ` +
        `${violations.length} violations${violations.length ? `:\n  ${violations.join('\n  ')}` : ''}`,
    );
    if (violations.length > 0) return 1;
    return downNodes.size > 0 ? 3 : 0;
  } finally {
    producing = false;
    polling = false;
    monitoring = false;
    for (const member of members.values()) await stopWorker(member.worker, 'SIGKILL').catch(() => undefined);
    members.clear();
    await client.close().catch(() => undefined);
    await cluster.destroy();
    cluster = null;
    rmSync(work, { recursive: true, force: true });
  }
}

function printTable(results: EventResult[]): void {
  const header = ['event', 'kind', 'target', 'longest unread ms', 'settled after ms', 'generation'];
  const rows = results.map((r) => [
    String(r.index),
    r.kind,
    r.target,
    String(r.unreadMsMax),
    String(r.settledMs),
    String(r.generationAfter),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

// Ctrl-C or a TERM: stop this run's processes by PID, then exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    const stopping = Promise.all(
      [...members.values()].map((m) => stopWorker(m.worker, 'SIGKILL').catch(() => undefined)),
    );
    void stopping.then(() => cluster?.destroy()).finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    for (const member of members.values()) await stopWorker(member.worker, 'SIGKILL').catch(() => undefined);
    await cluster?.destroy();
    process.exit(2);
  },
);
