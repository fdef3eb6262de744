// RaftGroup's reads: the core gets the clock before a read starts, and a read with no answer is
// asked again on later ticks (the core drops reads while no leader is known, and a ReadIndex on a
// link that is still reconnecting is lost), until it is answered or times out.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { GroupStore } from '../../src/broker/group-store.js';
import type { GroupMachine } from '../../src/broker/raft-group.js';
import { RaftGroup } from '../../src/broker/raft-group.js';
import type { RawNode } from '../../src/raft/index.js';

function groupWithRecordingCore(clock: { ticks: number }) {
  const inputs: string[] = [];
  const raw = {
    term: 1,
    recovering: false,
    advanceClock: (nowTicks: number) => inputs.push(`clock ${nowTicks}`),
    tick: (nowTicks: number) => inputs.push(`tick ${nowTicks}`),
    readIndex: (requestId: number) => inputs.push(`read ${requestId}`),
  };
  const group = new RaftGroup({
    groupId: 1,
    raw: raw as unknown as RawNode,
    store: {} as GroupStore,
    machine: {} as GroupMachine,
    logger: pino({ level: 'silent' }),
    onLeadership: () => {},
    nowTicks: () => clock.ticks,
  });
  return { group, inputs };
}

describe('RaftGroup reads', () => {
  it('hands the core the clock before the read, then asks again on ticks until answered', async () => {
    const clock = { ticks: 10 };
    const { group, inputs } = groupWithRecordingCore(clock);
    const reading = group.readIndex(5000);
    expect(inputs).toEqual(['clock 10', 'read 1']);
    group.tick(11);
    group.tick(12);
    expect(inputs.slice(2)).toEqual(['tick 11', 'tick 12']);
    group.tick(13); // three ticks without an answer: ask again
    group.tick(14);
    group.tick(16);
    expect(inputs.slice(4)).toEqual(['tick 13', 'read 1', 'tick 14', 'tick 16', 'read 1']);
    group.answerReads([{ index: 42, requestId: 1 }]);
    await expect(reading).resolves.toBe(42);
    group.tick(30);
    expect(inputs.at(-1)).toBe('tick 30');
  });

  it('fails a read that no leader confirmed in time, and stops asking for it', async () => {
    const { group, inputs } = groupWithRecordingCore({ ticks: 0 });
    await expect(group.readIndex(20)).rejects.toMatchObject({ code: 'NO_LEADER' });
    group.tick(100);
    expect(inputs).toEqual(['clock 0', 'read 1', 'tick 100']);
  });
});
