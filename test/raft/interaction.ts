// The environment the golden interaction scripts (test/raft/golden/*.txt) drive, in the manner
// of etcd-io/raft's interaction tests: nodes whose Readys are processed and whose messages are
// delivered only when a script says so, and a printout of each step to compare with the script.
// Writes are durable at once; no step sleeps: time is the `tick-*` commands.
//
// Commands (node ids are 1..n; a command that names none applies to all):
//   add-nodes <n> [<RaftConfig field>=<value> ...]   n voters
//   campaign <id> | propose <id> <text> | transfer-leadership <id> to=<id> | read-index <id> id=<n>
//   tick-heartbeat <id> | tick-election <id>         heartbeatTicks, or 2 x electionTicks, ticks
//   process-ready [<id> ...]                         take, print and persist every Ready
//   deliver-msgs [<id> ...] [drop]                   step (or drop) what is queued for them
//   stabilize [<id> ...]                             both, among these nodes, until quiet
//   isolate <id> ... | heal                          drop messages to and from them on delivery
//   compact <id> <index>                             snapshot at index, drop the log up to it
//   raft-state | raft-log <id>

import {
  type ConfState,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  RawNode,
  type Ready,
  SeededRandom,
  StateRole,
} from '../../src/raft/index.js';
import { describeEntry, describeMessage } from './describe.js';

/** A command of a script: `name arg arg key=value`. */
export interface Command {
  name: string;
  args: string[];
  options: Map<string, string>;
}

/** Rounds of stabilize before it gives up: a script that never goes quiet is a bug. */
const MAX_STABILIZE_ROUNDS = 1_000;
const encoder = new TextEncoder();

interface Node {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
}

export class InteractionEnv {
  private readonly nodes = new Map<NodeId, Node>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  private inFlight: Message[] = [];
  /** Nodes cut off from all others: messages to or from them are dropped on delivery. */
  private readonly isolated = new Set<NodeId>();
  private electionTicks = 0;
  private heartbeatTicks = 0;
  private out: string[] = [];

  /** Runs one command and returns what it printed ("ok" when nothing). */
  run(command: Command): string {
    this.out = [];
    this.dispatch(command);
    return this.out.length > 0 ? this.out.join('\n') : 'ok';
  }

  private dispatch(c: Command): void {
    switch (c.name) {
      case 'add-nodes':
        this.addNodes(c);
        break;
      case 'campaign':
        this.raw(c, 0).campaign();
        break;
      case 'propose':
        this.raw(c, 0).propose(encoder.encode(c.args[1] ?? ''));
        break;
      case 'transfer-leadership':
        this.raw(c, 0).transferLeader(Number(option(c, 'to')));
        break;
      case 'read-index':
        this.raw(c, 0).readIndex(Number(option(c, 'id')));
        break;
      case 'tick-heartbeat':
        this.tick(c, this.heartbeatTicks);
        break;
      case 'tick-election':
        // Randomized timeouts lie in [electionTicks, 2 * electionTicks): this always fires.
        this.tick(c, 2 * this.electionTicks);
        break;
      case 'process-ready':
        for (const id of this.ids(c)) this.processReady(this.node(id));
        break;
      case 'deliver-msgs':
        this.deliver(this.ids(c), c.options.has('drop'));
        break;
      case 'stabilize':
        this.stabilize(this.ids(c));
        break;
      case 'isolate':
        for (const id of this.ids(c)) this.isolated.add(id);
        break;
      case 'heal':
        this.isolated.clear();
        break;
      case 'compact':
        this.compact(c);
        break;
      case 'raft-state':
        this.printState();
        break;
      case 'raft-log':
        this.printLog(this.node(Number(c.args[0])));
        break;
      default:
        throw new Error(`unknown command ${c.name}`);
    }
  }

  /** `add-nodes 3 [key=value ...]`: nodes 1..n, all voters, with RaftConfig fields as options. */
  private addNodes(c: Command): void {
    const count = Number(c.args[0]);
    const config: Record<string, number | boolean> = { electionTicks: 10, heartbeatTicks: 1 };
    for (const [key, value] of c.options) {
      config[key] = value === 'true' ? true : value === 'false' ? false : Number(value);
    }
    this.electionTicks = Number(config.electionTicks);
    this.heartbeatTicks = Number(config.heartbeatTicks);
    const voters = Array.from({ length: count }, (_, i) => i + 1);
    const confState: ConfState = { voters, learners: [] };
    for (const id of voters) {
      const storage = new MemoryStorage();
      const raw = new RawNode({
        id,
        storage,
        random: new SeededRandom(id),
        initialState: { hardState: storage.hardState, confState },
        config: config as Partial<RaftConfig>,
      });
      this.nodes.set(id, { id, raw, storage });
    }
  }

  private tick(c: Command, ticks: number): void {
    const raw = this.raw(c, 0);
    for (let i = 0; i < ticks; i++) raw.tick();
  }

  /** Takes every Ready the node has, prints it, persists it at once, and queues its messages. */
  private processReady(node: Node): void {
    while (node.raw.hasReady()) {
      const ready = node.raw.ready();
      this.out.push(`> ${node.id} handling Ready`);
      for (const line of describeReady(ready)) this.out.push(`  ${line}`);
      if (ready.snapshot) node.storage.applySnapshot(ready.snapshot);
      node.storage.append(ready.entries);
      if (ready.hardState) node.storage.hardState = ready.hardState;
      this.inFlight.push(...ready.messages);
      node.raw.advance(ready);
      if (ready.persistId !== 0) node.raw.reportPersisted(ready.persistId);
    }
  }

  /** Delivers (or drops) every queued message addressed to one of `ids`, in send order. */
  private deliver(ids: NodeId[], drop: boolean): void {
    const targets = new Set(ids);
    const keep: Message[] = [];
    const take: Message[] = [];
    for (const m of this.inFlight) (targets.has(m.to) ? take : keep).push(m);
    this.inFlight = keep;
    for (const m of take) {
      const cut = this.isolated.has(m.from) || this.isolated.has(m.to);
      if (drop || cut) {
        this.out.push(`dropped: ${describeMessage(m)}`);
        continue;
      }
      this.out.push(describeMessage(m));
      this.node(m.to).raw.step(m);
    }
  }

  /** Processes Readys and delivers messages among `ids` until nothing moves. */
  private stabilize(ids: NodeId[]): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let moved = false;
      for (const id of ids) {
        const before = this.out.length;
        this.processReady(this.node(id));
        moved = moved || this.out.length > before;
      }
      for (const id of ids) {
        if (!this.inFlight.some((m) => m.to === id)) continue;
        this.out.push(`> ${id} receiving messages`);
        const before = this.out.length;
        this.deliver([id], false);
        for (let i = before; i < this.out.length; i++) this.out[i] = `  ${this.out[i]}`;
        moved = true;
      }
      if (!moved) return;
    }
    throw new Error('stabilize: the nodes did not go quiet');
  }

  /** `compact <id> <index>`: the node snapshots its state at index and drops the log up to it. */
  private compact(c: Command): void {
    const node = this.node(Number(c.args[0]));
    const index = Number(c.args[1]);
    node.storage.createSnapshot(index, node.raw.status().confState, new Uint8Array(0));
    node.storage.compact(index);
  }

  private printState(): void {
    for (const node of this.nodes.values()) {
      const s = node.raw.status();
      const isolated = this.isolated.has(node.id) ? ' (isolated)' : '';
      this.out.push(
        `${node.id}: ${StateRole[s.role]} term ${s.term} lead ${s.lead} commit ${s.commit} last ${s.lastIndex}${isolated}`,
      );
    }
  }

  private printLog(node: Node): void {
    const storage = node.storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    if (first > 1) this.out.push(`snapshot ${first - 1}/t${storage.term(first - 1)}`);
    if (last < first) {
      this.out.push('log is empty');
      return;
    }
    for (const entry of storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
      this.out.push(describeEntry(entry));
    }
  }

  private node(id: NodeId): Node {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  private raw(c: Command, argIndex: number): RawNode {
    return this.node(Number(c.args[argIndex])).raw;
  }

  /** The node ids a command names, or every node when it names none. */
  private ids(c: Command): NodeId[] {
    return c.args.length > 0 ? c.args.map(Number) : [...this.nodes.keys()];
  }
}

function option(c: Command, key: string): string {
  const value = c.options.get(key);
  if (value === undefined) throw new Error(`${c.name}: missing ${key}=`);
  return value;
}

function describeReady(ready: Ready): string[] {
  const lines: string[] = [];
  if (ready.softState) lines.push(`role: ${StateRole[ready.softState.role]}, lead ${ready.softState.lead}`);
  if (ready.hardState) {
    const hs = ready.hardState;
    lines.push(`hard state: term ${hs.term} vote ${hs.vote} commit ${hs.commit}`);
  }
  if (ready.snapshot) {
    const meta = ready.snapshot.metadata;
    lines.push(`snapshot: ${meta.index}/t${meta.term} voters ${meta.confState.voters.join(',')}`);
  }
  if (ready.entries.length > 0) {
    lines.push('entries:');
    for (const e of ready.entries) lines.push(`  ${describeEntry(e)}`);
  }
  if (ready.committedEntries.length > 0) {
    lines.push('committed entries:');
    for (const e of ready.committedEntries) lines.push(`  ${describeEntry(e)}`);
  }
  for (const r of ready.readStates) lines.push(`read state: request ${r.requestId} index ${r.index}`);
  if (ready.messages.length > 0) {
    lines.push('messages:');
    for (const m of ready.messages) lines.push(`  ${describeMessage(m)}`);
  }
  return lines;
}

/** Parses `name arg arg key=value`. */
export function parseCommand(line: string): Command {
  const [name, ...words] = line.trim().split(/\s+/);
  const args: string[] = [];
  const options = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq > 0) options.set(word.slice(0, eq), word.slice(eq + 1));
    else if (word === 'drop') options.set('drop', 'true');
    else args.push(word);
  }
  return { name: name!, args, options };
}
