// The event trace: a ring of the last events (formatted only when someone reads them), an optional
// sink that prints every event as it happens, and a running digest that identifies a run.

import { type Message, MessageType, type NodeId, type Ready, type StateRole } from '../../src/raft/index.js';
import { describeMessage, describeRange } from '../raft/describe.js';

export enum TraceKind {
  Deliver = 0,
  Drop = 1,
  Role = 2,
  Ready = 3,
  Durable = 4,
  Crash = 5,
  Restart = 6,
  Network = 7,
  Propose = 8,
  Snapshot = 9,
  Note = 10,
}

export interface TraceRecord {
  timeMs: number;
  node: NodeId;
  kind: TraceKind;
  message: Message | null;
  ready: Ready | null;
  /** Kind-specific numbers (Role: role and term; Durable: persistId). */
  a: number;
  b: number;
  text: string;
}

const ROLE_NAMES = ['follower', 'pre-candidate', 'candidate', 'leader'];

export function roleName(role: StateRole): string {
  return ROLE_NAMES[role] ?? `role${role}`;
}

function formatReady(r: Ready): string {
  const parts: string[] = [];
  if (r.snapshot) parts.push(`snapshot ${r.snapshot.metadata.index}/t${r.snapshot.metadata.term}`);
  if (r.entries.length > 0) {
    const first = r.entries[0]!;
    const last = r.entries[r.entries.length - 1]!;
    parts.push(`append ${describeRange(first.index, r.entries.length)} t${first.term}..t${last.term}`);
  }
  if (r.hardState) parts.push(`hs t${r.hardState.term} v${r.hardState.vote} c${r.hardState.commit}`);
  if (r.persistId) parts.push(`persist#${r.persistId}`);
  if (r.messages.length > 0) parts.push(`send ${r.messages.length}`);
  if (r.committedEntries.length > 0) {
    parts.push(`apply ${describeRange(r.committedEntries[0]!.index, r.committedEntries.length)}`);
  }
  if (r.confState) parts.push(`conf v[${r.confState.voters}] l[${r.confState.learners}]`);
  return `ready ${parts.join(', ')}`;
}

export function formatRecord(r: TraceRecord): string {
  const time = `${r.timeMs.toFixed(3).padStart(10)}ms`;
  const node = r.node ? `n${r.node}` : '--';
  let body: string;
  switch (r.kind) {
    case TraceKind.Deliver:
      body = `recv ${describeMessage(r.message!)}`;
      break;
    case TraceKind.Drop:
      body = `drop (${r.text}) ${describeMessage(r.message!)}`;
      break;
    case TraceKind.Role:
      body = `role → ${roleName(r.a as StateRole)} t${r.b}${r.text ? ` ${r.text}` : ''}`;
      break;
    case TraceKind.Ready:
      body = formatReady(r.ready!);
      break;
    case TraceKind.Durable:
      body = `durable persist#${r.a}${r.text ? ` ${r.text}` : ''}`;
      break;
    default:
      body = r.text;
  }
  return `${time} ${node.padEnd(3)} ${body}`;
}

const FNV_PRIME = 0x01000193;

export class Tracer {
  private readonly ring: TraceRecord[] = [];
  private next = 0;
  /** A running hash of every event: two runs with equal digests took the same steps. */
  digest = 0x811c9dc5;
  count = 0;

  constructor(
    private readonly capacity: number,
    /** Receives every event, formatted, as it happens (for --trace). */
    private readonly sink: ((line: string) => void) | null = null,
  ) {}

  add(
    timeMs: number,
    node: NodeId,
    kind: TraceKind,
    message: Message | null,
    ready: Ready | null,
    a = 0,
    b = 0,
    text = '',
  ): void {
    const record: TraceRecord = { timeMs, node, kind, message, ready, a, b, text };
    this.mix(record);
    this.count++;
    if (this.ring.length < this.capacity) this.ring.push(record);
    else this.ring[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
    if (this.sink) this.sink(formatRecord(record));
  }

  /** The retained events, oldest first, formatted. */
  lines(): string[] {
    const n = this.ring.length;
    const start = n < this.capacity ? 0 : this.next;
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(formatRecord(this.ring[(start + i) % n]!));
    return out;
  }

  private mixNumber(value: number): void {
    this.digest = Math.imul(this.digest ^ (value | 0), FNV_PRIME) >>> 0;
  }

  /**
   * A message's type, ends and term, then per kind: the log position it names (App: the entry
   * before its entries; AppResp: the match, or the rejected index and hint term; Vote: the last
   * entry; Commit: the match; ReadIndexResp: the read index; TransferLeader: the transferee), its
   * commit, its entry count and its reject flag.
   */
  private mixMessage(m: Message): void {
    let index = 0;
    let term = 0;
    let commit = 0;
    let entryCount = 0;
    let reject = false;
    switch (m.type) {
      case MessageType.App:
        index = m.prevIndex;
        term = m.prevTerm;
        commit = m.commit;
        entryCount = m.entries.length;
        break;
      case MessageType.AppResp:
        reject = m.reject;
        index = m.reject ? m.rejectedIndex : m.matchIndex;
        term = m.hintTerm;
        break;
      case MessageType.Vote:
      case MessageType.PreVote:
        index = m.lastIndex;
        term = m.lastTerm;
        break;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp:
        reject = m.reject;
        break;
      case MessageType.Heartbeat:
      case MessageType.Snapshot:
        commit = m.commit;
        break;
      case MessageType.Commit:
        index = m.matchIndex;
        term = m.matchTerm;
        commit = m.commit;
        break;
      case MessageType.ReadIndexResp:
        index = m.readIndex;
        break;
      case MessageType.TransferLeader:
        index = m.transferee;
        break;
    }
    this.mixNumber(m.type);
    this.mixNumber(m.from * 4096 + m.to);
    this.mixNumber(m.term);
    this.mixNumber(index);
    this.mixNumber(term);
    this.mixNumber(commit);
    this.mixNumber(entryCount + (reject ? 1 << 20 : 0));
  }

  private mix(r: TraceRecord): void {
    this.mixNumber(Math.round(r.timeMs * 1000));
    this.mixNumber(r.kind);
    this.mixNumber(r.node);
    this.mixNumber(r.a);
    this.mixNumber(r.b);
    if (r.message) this.mixMessage(r.message);
    const ready = r.ready;
    if (ready) {
      this.mixNumber(ready.persistId);
      this.mixNumber(ready.entries.length);
      this.mixNumber(ready.committedEntries.length);
      this.mixNumber(ready.messages.length);
    }
    for (let i = 0; i < r.text.length; i++) this.mixNumber(r.text.charCodeAt(i));
  }
}
