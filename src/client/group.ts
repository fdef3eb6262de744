// One consumer's membership of a consumer group (docs/api.md, "Consumer groups with membership"):
// join, heartbeat in the background, apply each new assignment through the consumer (revoke,
// commit, assign), rejoin when the member is unknown or its session lapsed, leave on close.
//
//   (start) ──join──▶ member ──heartbeat every heartbeatIntervalMs──▶ member
//                       │  a new generation or assignment: consumer.applyAssignment(answer),
//                       │  then heartbeat again at once (the server then knows revoked
//                       │  partitions were let go, and gives them to their new owner)
//                       │  no heartbeat answered for sessionTimeoutMs: lapsed — delivery stops
//                       │  (the server may have expired it), heartbeats go on with the same id; an
//                       │  answer resumes it (a metadata leader change restarts every session)
//                       │  UNKNOWN_MEMBER, or lapsed longer than the retry budget:
//                       ▼  consumer.loseAll() (no commit: others may own them now) ──join──▶ member
//                     leave ──DELETE member──▶ (closed)
//
// Heartbeats, joins and assignment changes run one at a time (a promise chain); commits do not
// wait on them (a commit from inside onRevoke must not deadlock), and carry the generation the
// consumer last applied.

import type { GroupOffset } from '../wire/types.js';
import { sleep } from './call.js';
import type { Raftlog } from './client.js';
import { isRetriable, RaftlogError } from './errors.js';
import { type RetryPolicy, retryDelayMs } from './retry.js';

/** One partition assigned to a member; `offset` is the group's committed offset, absent when none. */
export interface Assignment {
  topic: string;
  partition: number;
  offset?: number;
}

export interface JoinGroupRequest {
  topics: string[];
  sessionTimeoutMs?: number;
}

/** The answer of a join and of every heartbeat: the member's assignment now. */
export interface MembershipAnswer {
  memberId: string;
  generation: number;
  heartbeatIntervalMs: number;
  assignments: Assignment[];
}

export interface GroupMemberDescription {
  memberId: string;
  topics: string[];
  assignments: Assignment[];
  lastHeartbeatMs: number;
}

export interface GroupOffsetLag extends GroupOffset {
  highWatermark: number;
  lag: number;
}

export interface GroupDescription {
  group: string;
  generation: number;
  members: GroupMemberDescription[];
  offsets: GroupOffsetLag[];
}

export interface GroupSummary {
  group: string;
  members: number;
  generation: number;
}

export interface ListGroupsResponse {
  groups: GroupSummary[];
}

/** What the member needs of its consumer. */
export interface MembershipHost {
  /** Applies the member's assignment (revoking and assigning partitions); true if it changed. */
  applyAssignment(answer: MembershipAnswer): Promise<boolean>;
  /** The member is gone: drop every partition without committing (others may own them now). */
  loseAll(): Promise<void>;
  /** The member may be gone (no answer for a whole session): deliver nothing until resumed. */
  suspendDelivery(): void;
  resumeDelivery(): void;
  /** A background failure that will be retried. */
  reportError(error: unknown): void;
  /** A failure that ends the consumer (the reader throws it). */
  fail(error: unknown): void;
}

export interface MembershipOptions {
  group: string;
  topic: string;
  sessionTimeoutMs: number;
  retry: RetryPolicy;
}

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000;

export class Membership {
  memberId: string | undefined;
  /** The generation whose assignment the consumer has applied; commits and heartbeats carry it. */
  generation = -1;
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  private lastAnsweredMs = 0;
  /** No heartbeat answered for sessionTimeoutMs: the consumer is suspended until one is. */
  private lapsed = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private joining: Promise<void> | undefined;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(
    private readonly client: Raftlog,
    private readonly host: MembershipHost,
    private readonly options: MembershipOptions,
  ) {}

  get joined(): boolean {
    return this.memberId !== undefined;
  }

  /** Joins unless a member already; resolves once the first assignment is applied. */
  ensureJoined(): Promise<void> {
    if (this.joined || this.closed) return Promise.resolve();
    this.joining ??= this.serialized(() => this.join()).finally(() => {
      this.joining = undefined;
    });
    return this.joining;
  }

  /** A heartbeat now (after a STALE_GENERATION commit: learn the current assignment). */
  refresh(): Promise<void> {
    return this.serialized(() => this.heartbeat());
  }

  /** A fenced commit of the given offsets with the applied generation. */
  async commit(
    offsets: GroupOffset[],
    signal: AbortSignal | undefined,
    generation = this.generation,
  ): Promise<void> {
    const memberId = this.memberId;
    if (memberId === undefined) throw new RaftlogError('UNKNOWN_MEMBER', 'not a member of the group (yet)');
    await this.client.commitOffsets(this.options.group, offsets, { memberId, generation, signal });
  }

  /** Stops heartbeating and waits for a heartbeat or join in progress (close() then commits). */
  async quiesce(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.chain;
  }

  /** Stops heartbeating and leaves the group (its partitions move at once). */
  async leave(signal: AbortSignal | undefined): Promise<void> {
    await this.quiesce();
    const memberId = this.memberId;
    this.memberId = undefined;
    this.stop.abort(new RaftlogError('CLOSED', 'consumer closed'));
    if (memberId === undefined) return;
    try {
      await this.client.leaveGroup(this.options.group, memberId, { signal });
    } catch (error) {
      // Already gone (expired): that is what leaving wanted.
      if (!(error instanceof RaftlogError && error.code === 'UNKNOWN_MEMBER')) throw error;
    }
  }

  /** Stops heartbeating without leaving (the session expires on the server). */
  abandon(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stop.abort(new RaftlogError('CLOSED', 'consumer closed'));
  }

  private serialized(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async join(): Promise<void> {
    const { group, topic, sessionTimeoutMs, retry } = this.options;
    const startedMs = Date.now();
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        const answer = await this.client.joinGroup(
          group,
          { topics: [topic], sessionTimeoutMs },
          { signal: this.stop.signal },
        );
        this.memberId = answer.memberId;
        this.answered(answer);
        await this.apply(answer);
        this.schedule(this.heartbeatIntervalMs);
        return;
      } catch (error) {
        if (this.closed) return;
        // A join whose answer was lost (retriable but not retried by the client) left a member
        // nobody heartbeats: it expires after sessionTimeoutMs. Join again.
        const delayMs = retryDelayMs(
          retry,
          attempt,
          error instanceof RaftlogError ? error.retryAfterMs : undefined,
        );
        if (
          !isRetriable(error) ||
          attempt >= retry.attemptsMax ||
          Date.now() - startedMs + delayMs > retry.totalMsMax
        ) {
          this.host.fail(error);
          throw error;
        }
        this.host.reportError(error);
        await sleep(delayMs, this.stop.signal).catch(() => undefined);
      }
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.closed || this.memberId === undefined) return;
    const { group, sessionTimeoutMs } = this.options;
    try {
      const answer = await this.client.heartbeat(group, this.memberId, this.generation, {
        signal: this.stop.signal,
        timeoutMs: this.lapsed
          ? sessionTimeoutMs
          : Math.max(1, sessionTimeoutMs - (Date.now() - this.lastAnsweredMs)),
      });
      this.answered(answer);
      const before = this.generation;
      const changed = (await this.apply(answer)) || answer.generation !== before;
      this.unlapse(); // Still a member: what it holds was nobody else's meanwhile.
      // Tell the server at once that revoked partitions are let go (the next heartbeat carries
      // the new generation), so their new owners need not wait a whole interval.
      this.schedule(changed ? 0 : this.heartbeatIntervalMs);
    } catch (error) {
      if (this.closed) return;
      if (error instanceof RaftlogError && error.code === 'UNKNOWN_MEMBER') return this.rejoin();
      this.host.reportError(error);
      const silentMs = Date.now() - this.lastAnsweredMs;
      // Lapsed longer than the retry budget: give the membership up (a join then fails the reader
      // if the cluster stays out of reach).
      if (silentMs >= sessionTimeoutMs + this.options.retry.totalMsMax) return this.rejoin();
      if (silentMs >= sessionTimeoutMs && !this.lapsed) {
        // The server may have expired this member and given its partitions to others: deliver
        // nothing more. But no node may have decided so (a new metadata leader starts every
        // session afresh), so keep the member id: an answer resumes, UNKNOWN_MEMBER rejoins.
        this.lapsed = true;
        this.host.suspendDelivery();
      }
      // Try again soon (another node): the session is still running.
      this.schedule(Math.min(this.heartbeatIntervalMs, 500));
    }
  }

  /** The server may ask for quicker heartbeats while partitions move (and slower ones after). */
  private answered(answer: MembershipAnswer): void {
    this.lastAnsweredMs = Date.now();
    if (answer.heartbeatIntervalMs > 0) this.heartbeatIntervalMs = answer.heartbeatIntervalMs;
  }

  private async apply(answer: MembershipAnswer): Promise<boolean> {
    const changed = await this.host.applyAssignment(answer);
    this.generation = answer.generation;
    return changed;
  }

  /** The member is gone (expired or unknown): its partitions may be someone else's now. */
  private async rejoin(): Promise<void> {
    this.memberId = undefined;
    this.generation = -1;
    await this.host.loseAll();
    this.unlapse();
    await this.join().catch(() => undefined);
  }

  private unlapse(): void {
    if (!this.lapsed) return;
    this.lapsed = false;
    this.host.resumeDelivery();
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => void this.serialized(() => this.heartbeat()).catch(() => undefined),
      delayMs,
    );
    // A member does not keep the process alive by itself; the consumer's reads and close() do.
    this.timer.unref();
  }
}
