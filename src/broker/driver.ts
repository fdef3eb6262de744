// The node's one loop over every Raft group. A turn collects the Ready of each group that has
// work, hands all their writes to storage as one batch, queues their messages per peer, applies
// committed entries, and ends with one flush of the transport (one write per peer). Turns run
// when something happened: a tick, a message, a proposal, a durable write.
//
// When a turn runs decides latency. Proposals and ticks wait for setImmediate, so every request
// read in one poll phase joins one turn (one storage batch, one write per peer). A peer's messages
// and a durable write get a turn in a microtask instead: the ack, the commit and the client's
// response leave before the event loop polls again, rather than one pass later (on this machine a
// pass costs an epoll_wait, tens of microseconds). Commit notices are the exception: nothing waits
// on them, so they go out with the next turn, or after setImmediate, behind the responses.
//
// Time: every core judges its lease and the vote guard that protects it by the clock this driver
// hands it (nowTicks: the monotonic clock, in ticks), set before each message is stepped and at
// each tick; RaftGroup sets it before a read. A process that was stopped (SIGSTOP, a GC pause, a
// VM stall) therefore sees at once how long it was gone, whatever arrives first on resume.

import type { Logger } from 'pino';
import { type Message, MessageType, type NodeId } from '../raft/index.js';
import type { GroupStore, GroupWrite, NodeStore } from './group-store.js';
import type { RaftGroup } from './raft-group.js';

/** The part of the transport the driver uses. */
export interface MessageSink {
  send(toNodeId: NodeId, groupId: number, message: Message): void;
  /** Writes everything queued this turn: one write per peer. */
  flush(): void;
}

export interface DriverOptions {
  store: NodeStore;
  sink: MessageSink;
  tickMs: number;
  logger: Logger;
  /** A monotonic clock in milliseconds (default performance.now: it runs on while stopped). */
  clockMs?: () => number;
}

/** Readys taken from one group in one turn; more would mean a livelock in the core. */
const READYS_PER_GROUP_PER_TURN_MAX = 64;
/**
 * Microtask turns per pass of the event loop. Each durable write or batch of peer messages may
 * start one; past this, turns wait for setImmediate, so a chain of them cannot hold the loop.
 */
const PROMPT_TURNS_PER_LOOP_MAX = 8;

/** A Commit notice held for the next turn; it goes to message.to. */
interface HeldCommitNotice {
  groupId: number;
  message: Message;
}

export class Driver {
  readonly groups = new Map<number, RaftGroup>();
  private dirty = new Set<RaftGroup>();
  private spareDirty = new Set<RaftGroup>();
  private scheduled = false;
  private promptScheduled = false;
  private promptTurnsThisLoop = 0;
  /** Commit notices held back from the turn that made them; sent by the next turn or flush. */
  private readonly commitNotices: HeldCommitNotice[] = [];
  private commitNoticeFlushScheduled = false;
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly clockMs: () => number;
  /**
   * Turns run so far (promptTurns of them in a microtask), and messages dropped because their
   * group is not (yet) here.
   */
  turns = 0;
  promptTurns = 0;
  droppedForUnknownGroup = 0;
  /** Leaders' entries turned away because this replica may not write them now (disk floor). */
  droppedEntriesRefused = 0;

  constructor(private readonly options: DriverOptions) {
    this.clockMs = options.clockMs ?? (() => performance.now());
  }

  /** The clock the cores judge time by: monotonic, in ticks. */
  nowTicks(): number {
    return this.clockMs() / this.options.tickMs;
  }

  start(): void {
    this.ticker = setInterval(() => this.tickAll(), this.options.tickMs);
    this.ticker.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  add(group: RaftGroup): void {
    this.groups.set(group.groupId, group);
    this.markDirty(group);
  }

  remove(groupId: number): RaftGroup | undefined {
    const group = this.groups.get(groupId);
    if (!group) return undefined;
    this.groups.delete(groupId);
    this.dirty.delete(group);
    return group;
  }

  /** Something happened to the group (proposal, read, campaign): run a turn soon. */
  markDirty(group: RaftGroup): void {
    if (group.closed) return;
    this.dirty.add(group);
    this.schedule();
  }

  /**
   * A message from a peer, already decoded: step it into its group. `nowTicks` is the clock read
   * after it arrived (one reading serves a whole batch).
   */
  deliver(groupId: number, message: Message, nowTicks = this.nowTicks()): void {
    const group = this.groups.get(groupId);
    if (!group) {
      // Created on this node once the metadata that names it is applied; Raft resends.
      this.droppedForUnknownGroup++;
      return;
    }
    if (message.type === MessageType.App && message.entries.length > 0 && !group.admitsEntries(message)) {
      // As if lost: the leader sends them again, and commits with the other replicas meanwhile.
      this.droppedEntriesRefused++;
      return;
    }
    group.raw.advanceClock(nowTicks);
    group.raw.step(message);
    this.dirty.add(group);
    this.schedulePrompt();
  }

  private tickAll(): void {
    const nowTicks = this.nowTicks();
    for (const group of this.groups.values()) {
      group.tick(nowTicks);
      this.dirty.add(group);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(this.scheduledTurn);
  }

  /** A turn as soon as the current callback returns (see the file's header). */
  private schedulePrompt(): void {
    if (this.promptScheduled || this.stopped) return;
    if (this.promptTurnsThisLoop >= PROMPT_TURNS_PER_LOOP_MAX) {
      this.schedule();
      return;
    }
    if (this.promptTurnsThisLoop === 0) setImmediate(this.resetPromptTurns);
    this.promptTurnsThisLoop++;
    this.promptScheduled = true;
    queueMicrotask(this.promptTurn);
  }

  private readonly scheduledTurn = (): void => this.turn();

  private readonly promptTurn = (): void => {
    this.promptScheduled = false;
    this.promptTurns++;
    this.runTurn();
  };

  private readonly resetPromptTurns = (): void => {
    this.promptTurnsThisLoop = 0;
  };

  /** One turn over every group with work (what setImmediate runs). Public for tests that step by hand. */
  turn(): void {
    this.scheduled = false;
    this.runTurn();
  }

  private runTurn(): void {
    if (this.stopped) return;
    this.turns++;
    this.sendCommitNotices();
    const writes: Array<{ store: GroupStore; write: GroupWrite }> = [];
    // Two sets take turns, so a turn allocates none: groups marked dirty during this one go to the
    // other, and come back next turn.
    const groups = this.dirty;
    this.dirty = this.spareDirty;
    this.spareDirty = groups;
    for (const group of groups) {
      if (!group.closed) this.processGroup(group, writes);
    }
    groups.clear();
    if (writes.length > 0) this.options.store.submit(writes);
    this.options.sink.flush();
    if (this.commitNotices.length > 0 && !this.commitNoticeFlushScheduled) {
      this.commitNoticeFlushScheduled = true;
      setImmediate(this.flushCommitNotices);
    }
  }

  private readonly flushCommitNotices = (): void => {
    this.commitNoticeFlushScheduled = false;
    if (this.stopped || this.commitNotices.length === 0) return;
    this.sendCommitNotices();
    this.options.sink.flush();
  };

  private sendCommitNotices(): void {
    if (this.commitNotices.length === 0) return;
    // Sending never holds more notices, so the array is emptied in place (no array per turn).
    for (const notice of this.commitNotices)
      this.options.sink.send(notice.message.to, notice.groupId, notice.message);
    this.commitNotices.length = 0;
  }

  private processGroup(group: RaftGroup, writes: Array<{ store: GroupStore; write: GroupWrite }>): void {
    const raw = group.raw;
    for (let round = 0; round < READYS_PER_GROUP_PER_TURN_MAX && raw.hasReady(); round++) {
      const ready = raw.ready();
      group.beforePersist(ready);
      if (ready.entries.length > 0 || ready.snapshot || ready.hardState || ready.confState) {
        const persistId = ready.persistId;
        writes.push({
          store: group.store,
          write: {
            entries: ready.entries,
            hardState: ready.hardState,
            snapshot: ready.snapshot,
            confState: ready.confState,
            mustSync: ready.mustSync,
            onDurable: persistId === 0 ? noop : () => this.persisted(group, persistId),
          },
        });
      }
      for (const message of ready.messages) {
        if (message.type === MessageType.Commit) {
          this.commitNotices.push({ groupId: group.groupId, message });
        } else {
          this.options.sink.send(message.to, group.groupId, message);
        }
      }
      group.applyCommitted(ready.committedEntries);
      if (ready.readStates.length > 0) group.answerReads(ready.readStates);
      raw.advance(ready);
    }
    // A group that still has work after the cap comes back next turn rather than starve others.
    if (raw.hasReady()) this.markDirty(group);
  }

  private persisted(group: RaftGroup, persistId: number): void {
    if (group.closed) return;
    group.raw.reportPersisted(persistId);
    this.dirty.add(group);
    this.schedulePrompt();
  }
}

function noop(): void {}
