// The safety invariants, checked incrementally on every step of every run: election safety, log
// matching, leader completeness, state machine safety, monotonic commit, no lost acknowledgement,
// and real-time order of linearizable reads.

import {
  type Entry,
  type MemoryStorage,
  type NodeId,
  type RawNode,
  type Snapshot,
  StateRole,
} from '../../src/raft/index.js';
import { bytesEqual, entryHash, type StateMachine } from './state-machine.js';

/** A broken invariant. The cluster adds the seed and the trace before it reaches the runner. */
export class InvariantViolation extends Error {
  seed = -1;
  timeMs = 0;
  trace: string[] = [];
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** What the checker reads of a node. */
export interface CheckedNode {
  readonly id: NodeId;
  /** Bumped by every restart. */
  readonly incarnation: number;
  readonly up: boolean;
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  readonly sm: StateMachine;
  /** Commit index last seen in this incarnation (reset at restart). */
  checkedCommit: number;
}

interface CommitPoint {
  index: number;
  entryTerm: number;
}

/** (index, term) as one number: terms stay far below 2^21 in any run. */
const TERM_SPACE = 2 ** 21;
const INCARNATIONS = 2 ** 20;
const text = new TextDecoder();

function fail(invariant: string, detail: string): never {
  throw new InvariantViolation(invariant, detail);
}

/** Term of `index` in a node's log, or -1 below its snapshot, or undefined past its end. */
function termIn(storage: MemoryStorage, index: number): number | undefined {
  if (index > storage.lastIndex()) return undefined;
  if (index < storage.firstIndex() - 1) return -1;
  return storage.term(index);
}

export class InvariantChecker {
  /** Who led each term, as id * INCARNATIONS + incarnation: one node, one instance. */
  private readonly leaderOfTerm = new Map<number, number>();
  /** Log matching: (index, term) → the entry's hash and the term of the entry before it. */
  private readonly entryHashOf = new Map<number, number>();
  private readonly prevTermOf = new Map<number, number>();
  /** The applied history, by index: every node must apply exactly this. */
  private readonly appliedTerm: number[] = [0];
  private readonly appliedHash: number[] = [0];
  private readonly appliedChain: number[] = [0];
  private readonly appliedData: Uint8Array[] = [new Uint8Array(0)];
  /** For each node term, the highest commit a node in that term knew (and its entry's term). */
  private readonly commitByTerm = new Map<number, CommitPoint>();
  /** Term of the entry at each index some node reported committed. */
  private readonly committedTerm: number[] = [0];
  /** Acknowledged proposals: index → value. */
  readonly acked = new Map<number, Uint8Array>();
  /** Index of each applied value, when values must be unique (swarm runs). */
  private readonly valueIndex: Map<string, number> | null;
  highestCommit = 0;
  /** The highest index a client has seen acknowledged so far, in virtual time order. */
  highestAcked = 0;

  constructor(
    private readonly nodes: () => Iterable<CheckedNode>,
    uniqueValues: boolean,
  ) {
    this.valueIndex = uniqueValues ? new Map() : null;
  }

  /** The highest index some node applied. */
  get appliedLength(): number {
    return this.appliedTerm.length - 1;
  }

  /** The value every node applies at `index`, once one has. */
  appliedValue(index: number): Uint8Array | undefined {
    return this.appliedData[index];
  }

  // ---- log ---------------------------------------------------------------------------------

  /** A node is about to append `entries` after an entry of `prevTerm`. */
  onAppend(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.term < prev)
        fail('log terms', `n${node} appends ${e.index}/t${e.term} after an entry of t${prev}`);
      this.matchEntry(node, e, prev, true);
      prev = e.term;
    }
  }

  private matchEntry(node: NodeId, e: Entry, prevTerm: number, register: boolean): void {
    const key = e.index * TERM_SPACE + e.term;
    const hash = entryHash(e);
    const known = this.entryHashOf.get(key);
    if (known === undefined) {
      if (!register)
        fail('durability', `n${node} restarted with entry ${e.index}/t${e.term} it never appended`);
      this.entryHashOf.set(key, hash);
      this.prevTermOf.set(key, prevTerm);
      return;
    }
    if (known !== hash) fail('log matching', `n${node} has another entry at ${e.index}/t${e.term}`);
    const knownPrev = this.prevTermOf.get(key)!;
    if (knownPrev !== prevTerm) {
      fail(
        'log matching',
        `n${node}: ${e.index}/t${e.term} follows t${prevTerm} here, t${knownPrev} elsewhere`,
      );
    }
  }

  // ---- apply -------------------------------------------------------------------------------

  /** A node applies one committed entry. */
  onApply(node: NodeId, sm: StateMachine, e: Entry): number {
    if (e.index !== sm.appliedIndex + 1) {
      fail('state machine safety', `n${node} applies ${e.index} after ${sm.appliedIndex}: out of order`);
    }
    const hash = entryHash(e);
    const term = this.appliedTerm[e.index];
    if (term === undefined) {
      if (e.index !== this.appliedTerm.length)
        fail('state machine safety', `gap in the applied history at ${e.index}`);
      this.appliedTerm.push(e.term);
      this.appliedHash.push(hash);
      this.appliedData.push(e.data);
      this.recordValue(node, e);
    } else if (term !== e.term || this.appliedHash[e.index] !== hash) {
      fail(
        'state machine safety',
        `n${node} applies ${e.index}/t${e.term}, others applied ${e.index}/t${term}`,
      );
    }
    const acked = this.acked.get(e.index);
    if (acked && !bytesEqual(acked, e.data)) {
      fail('lost acknowledgement', `n${node} applies another value at acknowledged index ${e.index}`);
    }
    return hash;
  }

  /** After a node's state machine applied e: its chain must equal everyone's. */
  afterApply(node: NodeId, sm: StateMachine): void {
    const index = sm.appliedIndex;
    const chain = this.appliedChain[index];
    if (chain === undefined) this.appliedChain[index] = sm.chain;
    else if (chain !== sm.chain) fail('state machine safety', `n${node} state differs after ${index}`);
  }

  private recordValue(node: NodeId, e: Entry): void {
    if (!this.valueIndex || e.type !== 0 || e.data.length === 0) return;
    const value = text.decode(e.data);
    const earlier = this.valueIndex.get(value);
    if (earlier !== undefined)
      fail('duplicate', `n${node} applies "${value}" at ${e.index}, already at ${earlier}`);
    this.valueIndex.set(value, e.index);
  }

  /** A node restores its state machine from a snapshot: it must be everyone's state there. */
  onSnapshotRestore(node: NodeId, snapshot: Snapshot, sm: StateMachine): void {
    const { index, term } = snapshot.metadata;
    if (sm.appliedIndex !== index)
      fail('snapshot', `n${node} snapshot ${index} holds state of ${sm.appliedIndex}`);
    if (this.appliedChain[index] === undefined || this.appliedTerm[index] !== term) {
      fail('snapshot', `n${node} installs snapshot ${index}/t${term} that no node applied`);
    }
    if (this.appliedChain[index] !== sm.chain)
      fail('state machine safety', `n${node} snapshot ${index} diverges`);
  }

  // ---- after every step --------------------------------------------------------------------

  /** Checks what one node's last step could have broken. */
  afterStep(node: CheckedNode): void {
    const raw = node.raw;
    if (raw.role === StateRole.Leader) this.checkLeader(node);
    const commit = raw.commitIndex;
    if (commit < node.checkedCommit) {
      fail('commit monotonic', `n${node.id} commit went from ${node.checkedCommit} to ${commit}`);
    }
    if (commit > node.checkedCommit) this.onCommit(node, commit);
  }

  private checkLeader(node: CheckedNode): void {
    const term = node.raw.term;
    const holder = this.leaderOfTerm.get(term);
    const me = node.id * INCARNATIONS + node.incarnation;
    if (holder === me) return;
    if (holder !== undefined) {
      const other = `n${Math.floor(holder / INCARNATIONS)} (incarnation ${holder % INCARNATIONS})`;
      fail(
        'election safety',
        `n${node.id} (incarnation ${node.incarnation}) and ${other} both lead t${term}`,
      );
    }
    this.leaderOfTerm.set(term, me);
    let best: CommitPoint | undefined;
    for (const [t, point] of this.commitByTerm) {
      if (t < term && (!best || point.index > best.index)) best = point;
    }
    if (best) this.checkContains(node, best, term);
  }

  private checkContains(node: CheckedNode, point: CommitPoint, leaderTerm: number): void {
    const term = termIn(node.storage, point.index);
    if (term === -1 || term === point.entryTerm) return; // below its snapshot: checked at install
    fail(
      'leader completeness',
      `n${node.id} leads t${leaderTerm} without committed entry ${point.index}/t${point.entryTerm}` +
        ` (has ${term === undefined ? `last index ${node.storage.lastIndex()}` : `t${term}`})`,
    );
  }

  private onCommit(node: CheckedNode, commit: number): void {
    node.checkedCommit = commit;
    const entryTerm = termIn(node.storage, commit);
    if (entryTerm === undefined || entryTerm < 0) {
      fail(
        'commit',
        `n${node.id} commits ${commit} outside its log [${node.storage.firstIndex()}, ${node.storage.lastIndex()}]`,
      );
    }
    const known = this.committedTerm[commit];
    if (known === undefined) this.committedTerm[commit] = entryTerm;
    else if (known !== entryTerm)
      fail('commit', `n${node.id} commits ${commit}/t${entryTerm}, others ${commit}/t${known}`);
    if (commit > this.highestCommit) this.highestCommit = commit;
    const nodeTerm = node.raw.term;
    const point = this.commitByTerm.get(nodeTerm);
    if (point && point.index >= commit) return;
    const fresh = { index: commit, entryTerm };
    this.commitByTerm.set(nodeTerm, fresh);
    // Leaders of later terms must hold it, even those elected before it was known committed.
    for (const other of this.nodes()) {
      if (other.up && other.raw.role === StateRole.Leader && other.raw.term > nodeTerm) {
        this.checkContains(other, fresh, other.raw.term);
      }
    }
  }

  /** A node restarted from its durable image: everything in it was appended before. */
  onRestart(node: CheckedNode): void {
    const storage = node.storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    const snapshot = storage.snapshot();
    if (snapshot.metadata.index > 0) this.onSnapshotRestore(node.id, snapshot, node.sm);
    if (last < first) return;
    let prev = storage.term(first - 1);
    for (const e of storage.entries(first, last + 1, Number.POSITIVE_INFINITY)) {
      this.matchEntry(node.id, e, prev, false);
      prev = e.term;
    }
  }

  // ---- clients -----------------------------------------------------------------------------

  /** A client saw `data` committed at `index`. */
  ack(index: number, data: Uint8Array): void {
    const applied = this.appliedData[index];
    if (!applied || !bytesEqual(applied, data)) {
      fail('lost acknowledgement', `acknowledged index ${index} does not hold the acknowledged value`);
    }
    const earlier = this.acked.get(index);
    if (earlier && !bytesEqual(earlier, data))
      fail('lost acknowledgement', `two values acknowledged at ${index}`);
    this.acked.set(index, data);
    if (index > this.highestAcked) this.highestAcked = index;
  }

  /**
   * A linearizable read started at `startedMs` was answered with `readIndex`: the state applied up
   * to there must hold every write acknowledged before the read began (`mustReach`, the value of
   * highestAcked then). An answer may be late or never come; a stale one is a violation.
   */
  readAnswered(
    node: NodeId,
    read: { id: number; startedMs: number; mustReach: number },
    readIndex: number,
  ): void {
    if (readIndex < read.mustReach) {
      fail(
        'linearizable read',
        `n${node} answered read ${read.id} (started at ${read.startedMs.toFixed(3)} ms) with index ` +
          `${readIndex}, but index ${read.mustReach} was acknowledged before it started`,
      );
    }
  }

  /** At the end: every acknowledged value is in the history, and every node that got there has it. */
  finalCheck(): void {
    for (const [index, data] of this.acked) {
      const applied = this.appliedData[index];
      if (!applied || !bytesEqual(applied, data))
        fail('lost acknowledgement', `index ${index} lost its value`);
    }
  }
}
