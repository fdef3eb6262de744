// When the driver runs its turns: a peer's messages and a durable write get a turn in a microtask
// (their replies leave before the event loop polls again), proposals wait for setImmediate, and
// commit notices leave after the turn that made them. The groups here are scripted fakes: each
// Ready is written by the test, so every assertion is about the driver alone.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Driver, type MessageSink } from '../../src/broker/driver.js';
import type { GroupStore, GroupWrite, NodeStore } from '../../src/broker/group-store.js';
import type { RaftGroup } from '../../src/broker/raft-group.js';
import { type Entry, type Message, MessageType, makeMessage, type Ready } from '../../src/raft/index.js';

/** A sink that records what each flush carried. */
class RecordingSink implements MessageSink {
  readonly flushes: MessageType[][] = [];
  private queued: MessageType[] = [];
  send(_to: number, _groupId: number, message: Message): void {
    this.queued.push(message.type);
  }
  flush(): void {
    if (this.queued.length === 0) return;
    this.flushes.push(this.queued);
    this.queued = [];
  }
  sent(): MessageType[] {
    return this.flushes.flat();
  }
}

/** A store that reports each write durable when the test says so. */
class ManualStore implements NodeStore {
  readonly pending: GroupWrite[] = [];
  submit(writes: Array<{ store: GroupStore; write: GroupWrite }>): void {
    for (const { write } of writes) this.pending.push(write);
  }
  completeAll(): void {
    for (const write of this.pending.splice(0)) write.onDurable();
  }
  // The driver never opens, drops or closes groups.
  openGroup(): Promise<GroupStore> {
    throw new Error('not used by the driver');
  }
  async dropGroup(): Promise<void> {}
  async close(): Promise<void> {}
}

function emptyReady(): Ready {
  return {
    softState: null,
    hardState: null,
    mustSync: false,
    entries: [],
    snapshot: null,
    persistId: 0,
    messages: [],
    committedEntries: [],
    readStates: [],
    confState: null,
  };
}

/**
 * A group whose next Readys are queued by the test; step(), reportPersisted() and the clock it is
 * handed (inputs: 'clock N', 'tick N', 'step T') are recorded.
 */
function scriptedGroup(groupId: number) {
  const readys: Ready[] = [];
  const stepped: Message[] = [];
  const persisted: number[] = [];
  const inputs: string[] = [];
  const raw = {
    advanceClock: (nowTicks: number) => inputs.push(`clock ${nowTicks}`),
    tick: (nowTicks: number) => inputs.push(`tick ${nowTicks}`),
    step: (message: Message) => {
      inputs.push(`step ${MessageType[message.type]}`);
      stepped.push(message);
    },
    hasReady: () => readys.length > 0,
    ready: () => readys.shift()!,
    advance: () => {},
    reportPersisted: (id: number) => persisted.push(id),
  };
  const group = {
    groupId,
    closed: false,
    raw,
    store: {} as GroupStore,
    tick: (nowTicks: number) => raw.tick(nowTicks),
    beforePersist: () => {},
    applyCommitted: (_entries: readonly Entry[]) => {},
    answerReads: () => {},
  };
  return { group: group as unknown as RaftGroup, readys, stepped, persisted, inputs };
}

function message(type: MessageType): Message {
  return makeMessage(type, 1, 2, 1);
}

function makeDriver(clockMs?: () => number) {
  const sink = new RecordingSink();
  const store = new ManualStore();
  const driver = new Driver({ store, sink, tickMs: 1000, logger: pino({ level: 'silent' }), clockMs });
  return { driver, sink, store };
}

const nextLoopPass = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A driver holding one scripted group, after the turn that adding it started. */
async function runningWithGroup(groupId: number) {
  const made = makeDriver();
  const fake = scriptedGroup(groupId);
  made.driver.add(fake.group);
  await nextLoopPass();
  return { ...made, fake };
}

describe('driver clock', () => {
  it('hands a group the monotonic clock before it steps a message, however long since a tick', () => {
    let clockMs = 5000;
    const { driver } = makeDriver(() => clockMs);
    const fake = scriptedGroup(4);
    driver.add(fake.group);
    driver.deliver(4, message(MessageType.Heartbeat));
    clockMs = 7500; // a pause: no tick ran, the clock went on
    driver.deliver(4, message(MessageType.ReadIndex));
    driver.deliver(4, message(MessageType.App), 9);
    expect(fake.inputs).toEqual([
      'clock 5',
      'step Heartbeat',
      'clock 7.5',
      'step ReadIndex',
      'clock 9',
      'step App',
    ]);
    expect(driver.nowTicks()).toBe(7.5);
    driver.stop();
  });
});

describe('driver turns', () => {
  it("answers a peer's message in a microtask, before the event loop polls again", async () => {
    const { driver, sink, fake } = await runningWithGroup(7);
    const turnsBefore = driver.turns;

    const reply = emptyReady();
    reply.messages = [message(MessageType.AppResp)];
    fake.readys.push(reply);
    driver.deliver(7, message(MessageType.App));
    expect(sink.sent()).toEqual([]); // not inside deliver() itself
    await Promise.resolve();
    expect(fake.stepped.map((m) => m.type)).toEqual([MessageType.App]);
    expect(sink.sent()).toEqual([MessageType.AppResp]);
    expect(driver.turns).toBe(turnsBefore + 1);
    expect(driver.promptTurns).toBe(1);
    driver.stop();
  });

  it('reports a durable write to its group in a microtask turn', async () => {
    const { driver, sink, store } = makeDriver();
    const fake = scriptedGroup(3);
    const write = emptyReady();
    write.entries = [{ term: 1, index: 1, type: 0, data: new Uint8Array(1) } as Entry];
    write.persistId = 5;
    write.mustSync = true;
    fake.readys.push(write);
    driver.add(fake.group);
    await nextLoopPass();
    expect(store.pending).toHaveLength(1);

    const ack = emptyReady();
    ack.messages = [message(MessageType.AppResp)];
    fake.readys.push(ack);
    store.completeAll();
    expect(fake.persisted).toEqual([5]);
    await Promise.resolve();
    expect(sink.sent()).toEqual([MessageType.AppResp]);
    driver.stop();
  });

  it('waits for setImmediate on a proposal, so requests of one poll phase share a turn', async () => {
    const { driver, fake } = await runningWithGroup(1);
    const turnsBefore = driver.turns;
    for (let i = 0; i < 5; i++) driver.markDirty(fake.group);
    await Promise.resolve();
    expect(driver.turns).toBe(turnsBefore);
    await nextLoopPass();
    expect(driver.turns).toBe(turnsBefore + 1);
    driver.stop();
  });

  it('sends commit notices after the turn that made them, behind its other messages', async () => {
    const { driver, sink } = makeDriver();
    const fake = scriptedGroup(2);
    const commit = emptyReady();
    commit.messages = [message(MessageType.Commit), message(MessageType.App), message(MessageType.Commit)];
    fake.readys.push(commit);
    driver.add(fake.group);
    await Promise.resolve();
    expect(sink.flushes).toEqual([]);
    await nextLoopPass();
    expect(sink.flushes[0]).toEqual([MessageType.App]);
    await nextLoopPass();
    expect(sink.flushes[1]).toEqual([MessageType.Commit, MessageType.Commit]);
    expect(sink.flushes).toHaveLength(2);
    driver.stop();
  });

  it('sends held commit notices with the next turn when it comes first', async () => {
    const { driver, sink } = makeDriver();
    const fake = scriptedGroup(2);
    const commit = emptyReady();
    commit.messages = [message(MessageType.Commit)];
    fake.readys.push(commit);
    driver.add(fake.group);
    await nextLoopPass();
    expect(sink.flushes).toEqual([]);
    const reply = emptyReady();
    reply.messages = [message(MessageType.HeartbeatResp)];
    fake.readys.push(reply);
    driver.deliver(2, message(MessageType.Heartbeat));
    await Promise.resolve();
    expect(sink.flushes).toEqual([[MessageType.Commit, MessageType.HeartbeatResp]]);
    await nextLoopPass();
    expect(sink.flushes).toHaveLength(1);
    driver.stop();
  });

  it('runs at most 8 microtask turns per pass of the event loop, then waits for setImmediate', async () => {
    const { driver } = await runningWithGroup(9);
    const turnsBefore = driver.turns;
    for (let i = 0; i < 12; i++) {
      driver.deliver(9, message(MessageType.Heartbeat));
      await Promise.resolve();
    }
    expect(driver.promptTurns).toBe(8);
    expect(driver.turns).toBe(turnsBefore + 8);
    await nextLoopPass();
    expect(driver.turns).toBe(turnsBefore + 9);
    // A new pass of the loop: prompt turns again.
    driver.deliver(9, message(MessageType.Heartbeat));
    await Promise.resolve();
    expect(driver.promptTurns).toBe(9);
    driver.stop();
  });
});
