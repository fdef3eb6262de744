// Helpers for the 6.824 Raft lab scenarios (lab-2*.test.ts): the lab's constants, its peer
// arithmetic on our 1-based ids, background clients (the lab's goroutines) on the virtual clock,
// and a seed loop that names the seed and shows the trace when a scenario fails.

import type { NodeId } from '../../src/raft/index.js';
import { Cluster, type ClusterOptions, encodeValue, SimFailure } from './cluster.js';
import { mixSeed, SimRandom } from './random.js';

/** The lab's RaftElectionTimeout: the unit its sleeps are written in. */
export const ELECTION_TIMEOUT_MS = 1000;
/** 2D: the lab's SnapShotInterval and MAXLOGSIZE (bytes of persisted Raft state). */
export const SNAPSHOT_INTERVAL = 10;
export const MAX_LOG_BYTES = 2000;

/** Trace lines shown with a failure (the harness keeps 200). */
const TRACE_LINES_SHOWN = 60;

/**
 * Runs `body` once per seed. A failure names the seed and, when the harness stamped one, the
 * virtual time and the last events, so `it` output alone is enough to replay it.
 * LAB_SEEDS=7 or LAB_SEEDS=1-200 replaces the fixed seeds (to replay one, or to scan many).
 */
export function forSeeds(seeds: readonly number[], body: (seed: number) => void): void {
  const failures: { seed: number; error: unknown }[] = [];
  for (const seed of seedsFromEnv() ?? seeds) {
    try {
      body(seed);
    } catch (error) {
      failures.push({ seed, error });
    }
  }
  if (failures.length === 0) return;
  const first = withSeed(failures[0]!.seed, failures[0]!.error);
  if (failures.length > 1) {
    const others = failures.slice(1).map((f) => `seed ${f.seed}: ${firstLine(f.error)}`);
    first.message += `\nalso failed:\n${others.join('\n')}`;
    first.stack = `${first.message}\n${first.stack ?? ''}`;
  }
  throw first;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

function seedsFromEnv(): number[] | null {
  const text = process.env.LAB_SEEDS;
  if (!text) return null;
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`LAB_SEEDS must be N or N-M, got ${text}`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function withSeed(seed: number, error: unknown): Error {
  if (!(error instanceof Error)) return new Error(`seed ${seed}: ${String(error)}`);
  const stamped = error as Error & { timeMs?: number; trace?: string[] };
  const at = stamped.timeMs !== undefined ? ` at ${stamped.timeMs.toFixed(1)} ms` : '';
  const trace = stamped.trace?.length
    ? `\nlast events:\n${stamped.trace.slice(-TRACE_LINES_SHOWN).join('\n')}`
    : '';
  const wrapped = new Error(`seed ${seed}${at}: ${error.message}${trace}`, { cause: error });
  wrapped.stack = `${wrapped.message}\n${error.stack ?? ''}`;
  return wrapped;
}

/** Prints a scenario's measured figures when LAB_FIGURES is set (for reports; quiet in npm test). */
export function figures(scenario: string, seed: number, values: Record<string, number | string>): void {
  if (!process.env.LAB_FIGURES) return;
  const text = Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : v}`)
    .join(' ');
  console.log(`[lab] ${scenario} seed ${seed}: ${text}`);
}

/** The lab's `(i + k) % servers` on ids 1..servers. */
export function peer(id: NodeId, k: number, servers: number): NodeId {
  return ((((id - 1 + k) % servers) + servers) % servers) + 1;
}

export interface Election {
  timeMs: number;
  id: NodeId;
  term: number;
}

export interface LabCluster {
  c: Cluster;
  /** The scenario's own random stream (the lab's rand). */
  rng: SimRandom;
  /** Every node that became leader of a new term, in order. */
  elections: Election[];
}

/** A cluster for one scenario that records every election. */
export function labCluster(options: ClusterOptions): LabCluster {
  const elections: Election[] = [];
  const c: Cluster = new Cluster({
    ...options,
    onNewLeader: (id, term) => elections.push({ timeMs: c.nowMs, id, term }),
  });
  return { c, rng: new SimRandom(mixSeed(options.seed, 0x1ab)), elections };
}

/** Virtual ms from `sinceMs` to the first election after it (-1: none yet). */
export function electedAfter(elections: readonly Election[], sinceMs: number): number {
  const first = elections.find((e) => e.timeMs >= sinceMs);
  return first ? first.timeMs - sinceMs : -1;
}

/** Distinct commands about the size of the lab's rand.Int() (up to 19 digits). */
export class Values {
  private next = 0;
  constructor(private readonly rng: SimRandom) {}

  take(): string {
    this.next++;
    return `${this.next}-${this.rng.next32().toString().padStart(10, '0')}`;
  }
}

/** Highest persisted Raft state (log and hard state, not the snapshot) of any node: the lab's LogSize. */
export function maxRaftStateBytes(c: Cluster): number {
  return Math.max(...c.ids.map((id) => c.raftStateBytes(id)));
}

/** The lab's Start on every running node, as its Figure 8 and churn loops do; ids that accepted. */
export function startOnAll(c: Cluster, value: () => string): { id: NodeId; index: number }[] {
  const accepted: { id: NodeId; index: number }[] = [];
  for (const id of c.ids) {
    if (!c.isUp(id)) continue;
    const started = c.start(id, value());
    if (started) accepted.push({ id, index: started.index });
  }
  return accepted;
}

/**
 * 6.824's one() as a goroutine: the same rules as Cluster.one (10 s to start, 2 s to see
 * `expectedServers` apply exactly this value, retry or fail), but driven by scheduled events so
 * several run at once while the test runs the clock. A failure throws out of the clock.
 */
export class BackgroundOne {
  done = false;
  index = -1;
  private readonly deadlineMs: number;
  private agreedByMs = 0;
  private starts = 0;

  constructor(
    private readonly c: Cluster,
    private readonly value: string,
    private readonly expectedServers: number,
    private readonly retry: boolean,
  ) {
    this.deadlineMs = c.nowMs + 10_000;
    c.schedule(0, () => this.tryStart());
  }

  private tryStart(): void {
    const c = this.c;
    if (c.nowMs >= this.deadlineMs) this.fail();
    for (let tried = 0; tried < c.ids.length; tried++) {
      this.starts = (this.starts + 1) % c.ids.length;
      const id = c.ids[this.starts]!;
      if (!c.isUp(id) || !c.isConnected(id)) continue;
      const started = c.start(id, this.value);
      if (started) {
        this.index = started.index;
        this.agreedByMs = c.nowMs + 2000;
        c.schedule(0, () => this.poll());
        return;
      }
    }
    c.schedule(50, () => this.tryStart());
  }

  private poll(): void {
    const c = this.c;
    const { count, value } = c.nCommitted(this.index);
    if (count > 0 && count >= this.expectedServers && value === this.value) {
      c.checker.ack(this.index, encodeValue(this.value));
      this.done = true;
      return;
    }
    if (c.nowMs < this.agreedByMs) {
      c.schedule(20, () => this.poll());
      return;
    }
    if (!this.retry) this.fail();
    c.schedule(0, () => this.tryStart());
  }

  private fail(): never {
    throw new SimFailure(`background one(${this.value}) failed to reach agreement`);
  }
}

/**
 * A churn client (6.824's internalChurn cfn): starts a fresh value on every running node, and when
 * one accepted, polls 10, 20, 50, 100, 200 ms for that index to commit; a value it saw committed
 * at its index is recorded. Otherwise it sleeps 79 + 17·me ms and tries again.
 */
export class ChurnClient {
  readonly committed: string[] = [];
  stopped = false;
  private static readonly POLLS_MS = [10, 20, 50, 100, 200];

  constructor(
    private readonly c: Cluster,
    private readonly me: number,
    private readonly values: Values,
  ) {
    c.schedule(0, () => this.round());
  }

  private round(): void {
    if (this.stopped) return;
    const x = this.values.take();
    const accepted = startOnAll(this.c, () => x);
    if (accepted.length === 0) {
      this.c.schedule(79 + this.me * 17, () => this.round());
      return;
    }
    this.poll(accepted[accepted.length - 1]!.index, x, 0);
  }

  private poll(index: number, x: string, attempt: number): void {
    const { count, value } = this.c.nCommitted(index);
    if (count > 0) {
      if (value === x) this.committed.push(x);
      this.c.schedule(0, () => this.round());
      return;
    }
    const last = attempt + 1 === ChurnClient.POLLS_MS.length;
    this.c.schedule(ChurnClient.POLLS_MS[attempt]!, () =>
      last ? this.round() : this.poll(index, x, attempt + 1),
    );
  }
}
