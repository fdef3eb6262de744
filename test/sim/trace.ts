// The event trace: a ring of the last events (formatted only when someone reads them), an optional
// sink that prints every event as it happens, and a running digest that identifies a run.

import { type Message, MessageType, type NodeId, type Ready, type StateRole } from '../../src/raft/index.js';

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

function range(first: number, count: number): string {
  return count === 0 ? '[]' : count === 1 ? `[${first}]` : `[${first}..${first + count - 1}]`;
}

/** One line for a message: type, from→to, term, and the fields that type uses. */
export function formatMessage(m: Message): string {
  const head = `${MessageType[m.type]} ${m.from}→${m.to} t${m.term}`;
  switch (m.type) {
    case MessageType.App:
      return `${head} prev ${m.index}/t${m.logTerm} e${range(m.index + 1, m.entries.length)} c${m.commit}`;
    case MessageType.AppResp:
      if (m.reject) return `${head} REJECT i${m.index} hint ${m.rejectHint}/t${m.logTerm}${rec(m)}`;
      return `${head} i${m.index}${rec(m)}`;
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} last ${m.index}/t${m.logTerm}${m.context ? ' transfer' : ''}${rec(m)}`;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head} ${m.reject ? 'REJECT' : 'GRANT'}`;
    case MessageType.Heartbeat:
      return `${head} c${m.commit} round ${m.context}`;
    case MessageType.Commit:
      return `${head} c${m.commit} at ${m.index}/t${m.logTerm}`;
    case MessageType.HeartbeatResp:
      return `${head} round ${m.context}${rec(m)}`;
    case MessageType.Snapshot: {
      const meta = m.snapshot?.metadata;
      return `${head} snap ${meta?.index}/t${meta?.term} voters ${meta?.confState.voters.join(',')}`;
    }
    default:
      return `${head} i${m.index} ctx ${m.context}`;
  }
}

function rec(m: Message): string {
  return m.recovering ? ' recovering' : '';
}

function formatReady(r: Ready): string {
  const parts: string[] = [];
  if (r.snapshot) parts.push(`snapshot ${r.snapshot.metadata.index}/t${r.snapshot.metadata.term}`);
  if (r.entries.length > 0) {
    const first = r.entries[0]!;
    const last = r.entries[r.entries.length - 1]!;
    parts.push(`append ${range(first.index, r.entries.length)} t${first.term}..t${last.term}`);
  }
  if (r.hardState) parts.push(`hs t${r.hardState.term} v${r.hardState.vote} c${r.hardState.commit}`);
  if (r.persistId) parts.push(`persist#${r.persistId}`);
  if (r.messages.length > 0) parts.push(`send ${r.messages.length}`);
  if (r.committedEntries.length > 0) {
    parts.push(`apply ${range(r.committedEntries[0]!.index, r.committedEntries.length)}`);
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
      body = `recv ${formatMessage(r.message!)}`;
      break;
    case TraceKind.Drop:
      body = `drop (${r.text}) ${formatMessage(r.message!)}`;
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

  private mix(r: TraceRecord): void {
    this.mixNumber(Math.round(r.timeMs * 1000));
    this.mixNumber(r.kind);
    this.mixNumber(r.node);
    this.mixNumber(r.a);
    this.mixNumber(r.b);
    const m = r.message;
    if (m) {
      this.mixNumber(m.type);
      this.mixNumber(m.from * 4096 + m.to);
      this.mixNumber(m.term);
      this.mixNumber(m.index);
      this.mixNumber(m.logTerm);
      this.mixNumber(m.commit);
      this.mixNumber(m.entries.length + (m.reject ? 1 << 20 : 0));
    }
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
