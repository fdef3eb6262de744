// A synchronous in-memory network of RawNodes for unit tests of the core: messages are delivered
// in order until the cluster is quiet. Time moves only by tick(). Persistence is immediate unless a
// node's writes are held, which lets a test observe what the core does before a write is durable.

import {
  type ConfState,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  type MessageType,
  type NodeId,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
  SeededRandom,
  StateRole,
} from '../../src/raft/index.js';

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Data of every applied normal entry, by index. */
  applied: Map<number, string>;
  readStates: ReadState[];
  /** Readys whose writes are not yet durable (when holdWrites is on). */
  heldWrites: Ready[];
  holdWrites: boolean;
}

export interface NetworkOptions {
  voters: NodeId[];
  learners?: NodeId[];
  config?: Partial<RaftConfig>;
  seed?: number;
}

const MAX_STABILIZE_ROUNDS = 10_000;
const text = new TextDecoder();
const encoder = new TextEncoder();

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Every message delivered so far, for assertions on counts and types. */
  readonly delivered: Message[] = [];
  /** Cut links, as "from-to". */
  private readonly cut = new Set<string>();
  /** Messages of these types are dropped. */
  readonly dropTypes = new Set<MessageType>();
  /** Messages for which this returns true are dropped. */
  dropIf: ((message: Message) => boolean) | null = null;
  private readonly config: Partial<RaftConfig>;
  private readonly seed: number;
  private inbox: Message[] = [];

  constructor(options: NetworkOptions) {
    this.config = { electionTicks: 10, heartbeatTicks: 1, ...options.config };
    this.seed = options.seed ?? 1;
    const confState: ConfState = { voters: options.voters, learners: options.learners ?? [] };
    for (const id of [...options.voters, ...(options.learners ?? [])]) this.addNode(id, confState);
  }

  addNode(
    id: NodeId,
    confState: ConfState,
    options: { recovering?: boolean; storage?: MemoryStorage } = {},
  ): TestNode {
    const storage = options.storage ?? new MemoryStorage();
    const snapshotConf = storage.snapshot().metadata.index > 0 ? storage.snapshot().metadata.confState : null;
    const raw = new RawNode({
      id,
      storage,
      random: new SeededRandom(this.seed * 1000 + id),
      initialState: { hardState: storage.hardState, confState: snapshotConf ?? confState },
      applied: storage.snapshot().metadata.index,
      config: this.config,
      recovering: options.recovering,
    });
    const node: TestNode = {
      id,
      raw,
      storage,
      applied: new Map(),
      readStates: [],
      heldWrites: [],
      holdWrites: false,
    };
    this.nodes.set(id, node);
    return node;
  }

  /**
   * Restarts a node from its storage. With `loseLog`, it comes back with only its hard state,
   * as a memory-mode replica does, and is marked recovering.
   */
  restart(id: NodeId, options: { loseLog?: boolean } = {}): TestNode {
    const old = this.node(id);
    let storage = old.storage;
    if (options.loseLog) {
      storage = new MemoryStorage();
      storage.hardState = { ...old.storage.hardState, commit: 0 };
    }
    const confState = old.raw.status().confState;
    return this.addNode(id, confState, { recovering: options.loseLog === true, storage });
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  /** The current leader with the highest term, or undefined. */
  leader(): TestNode | undefined {
    let best: TestNode | undefined;
    for (const node of this.nodes.values()) {
      if (node.raw.role === StateRole.Leader && (!best || node.raw.term > best.raw.term)) best = node;
    }
    return best;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}-${other}`);
      this.cut.add(`${other}-${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}-${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.dropTypes.clear();
    this.dropIf = null;
  }

  /** Ticks the given nodes (default all) n times, stabilizing after each tick. */
  tick(n: number, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids ?? this.nodes.keys()) this.node(id).raw.tick();
      this.stabilize();
    }
  }

  /** Makes `id` campaign and runs until quiet. */
  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  /** Elects `id` by campaigning, and checks that it won. */
  elect(id: NodeId): TestNode {
    this.campaign(id);
    const node = this.node(id);
    if (node.raw.role !== StateRole.Leader) throw new Error(`node ${id} did not win: role ${node.raw.role}`);
    return node;
  }

  propose(id: NodeId, value: string): number {
    const index = this.raw(id).propose(encoder.encode(value));
    this.stabilize();
    return index;
  }

  /** Injects a message as if it came from the network. */
  send(message: Message): void {
    this.inbox.push(message);
    this.stabilize();
  }

  /** Processes Readys and delivers messages until nothing moves. */
  stabilize(): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let moved = false;
      for (const node of this.nodes.values()) moved = this.processReadys(node) || moved;
      const batch = this.inbox;
      this.inbox = [];
      for (const m of batch) {
        moved = true;
        if (this.cut.has(`${m.from}-${m.to}`) || this.dropTypes.has(m.type) || this.dropIf?.(m)) continue;
        const target = this.nodes.get(m.to);
        if (!target) continue;
        this.delivered.push(m);
        target.raw.step(m);
      }
      if (!moved) return;
    }
    throw new Error('network did not stabilize');
  }

  private processReadys(node: TestNode): boolean {
    let moved = false;
    while (node.raw.hasReady()) {
      moved = true;
      const ready = node.raw.ready();
      if (ready.snapshot) node.storage.applySnapshot(ready.snapshot);
      node.storage.append(ready.entries);
      if (ready.hardState) node.storage.hardState = ready.hardState;
      this.inbox.push(...ready.messages);
      for (const entry of ready.committedEntries) this.apply(node, entry);
      node.readStates.push(...ready.readStates);
      node.raw.advance(ready);
      if (ready.persistId === 0) continue;
      if (node.holdWrites) node.heldWrites.push(ready);
      else node.raw.reportPersisted(ready.persistId);
    }
    return moved;
  }

  /** Makes a node's held writes durable. */
  releaseWrites(id: NodeId): void {
    const node = this.node(id);
    const held = node.heldWrites;
    node.heldWrites = [];
    if (held.length > 0) node.raw.reportPersisted(held[held.length - 1]!.persistId);
    this.stabilize();
  }

  private apply(node: TestNode, entry: Entry): void {
    if (entry.type !== EntryType.Normal || entry.data.length === 0) return;
    node.applied.set(entry.index, text.decode(entry.data));
  }

  /** Count of delivered messages of a type since `since` (an index into delivered). */
  countDelivered(type: MessageType, since = 0): number {
    let count = 0;
    for (let i = since; i < this.delivered.length; i++) if (this.delivered[i]!.type === type) count++;
    return count;
  }
}
