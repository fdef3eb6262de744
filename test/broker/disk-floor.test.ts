// The disk's free-space floor: the guard's arithmetic, and on an in-process cluster what a node
// under its floor does: produce to a disk topic refused with DISK_FULL (nothing appended), its
// leaderships handed to peers, entries from leaders turned away while the others commit, and
// everything back by itself once space returns.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskGuard } from '../../src/broker/disk-guard.js';
import { isBrokerError } from '../../src/broker/errors.js';
import { produceLocal } from '../../src/broker/produce.js';
import { eventually, InProcessCluster, leaderOf } from './in-process-cluster.js';

const logger = pino({ level: 'silent' });
const MIB = 1024 * 1024;

function guardWith(free: { bytes: number }, freeBytesMin = 10 * MIB): DiskGuard {
  return new DiskGuard({
    dataDir: '.',
    freeBytesMin,
    checkIntervalMs: 20,
    logger,
    readFreeBytes: async () => free.bytes,
  });
}

describe('disk guard', () => {
  it('refuses what would take the disk under its floor, counting writes between readings', async () => {
    const free = { bytes: 14 * MIB };
    const guard = guardWith(free);
    await guard.check();
    guard.admitProduce(2 * MIB, 't/0'); // a 1 MiB sync write: WAL and segment
    expect(guard.estimatedFreeBytes()).toBe(12 * MIB);
    expect(() => guard.admitProduce(3 * MIB, 't/0')).toThrow(/under its floor/);
    expect(guard.admitReplicated(2 * MIB)).toBe(true);
    expect(guard.admitReplicated(1)).toBe(false);
    expect([guard.refusedProduce, guard.refusedReplication]).toEqual([1, 1]);
    free.bytes = 100 * MIB;
    await guard.check();
    expect(guard.admitReplicated(20 * MIB)).toBe(true);
  });

  it('tells its listeners on every look under the floor, and once when space is back', async () => {
    const free = { bytes: 5 * MIB };
    const guard = guardWith(free);
    const seen: boolean[] = [];
    guard.onChange((under) => seen.push(under));
    await guard.check();
    await guard.check();
    free.bytes = 50 * MIB;
    await guard.check();
    await guard.check();
    expect(seen).toEqual([true, true, false]);
  });

  it('keeps its last reading when statfs fails, and does not call that a full disk', async () => {
    let fail = false;
    const guard = new DiskGuard({
      dataDir: '.',
      freeBytesMin: MIB,
      logger,
      readFreeBytes: async () => {
        if (fail) throw new Error('EIO');
        return 50 * MIB;
      },
    });
    await guard.check();
    fail = true;
    await guard.check();
    expect(guard.underFloor).toBe(false);
    expect(guard.freeBytes).toBe(50 * MIB);
  });
});

describe('a node under its disk floor (in process)', () => {
  let cluster: InProcessCluster | null = null;
  afterEach(async () => {
    await cluster?.stopAll();
    cluster = null;
  });

  it('refuses produce with DISK_FULL, hands its leadership away, and resumes when space is back', async () => {
    const free = new Map([1, 2, 3].map((id) => [id, { bytes: 1000 * MIB }]));
    const guards = new Map([1, 2, 3].map((id) => [id, guardWith(free.get(id)!)]));
    const c = new InProcessCluster(3, (id) => ({ diskGuard: guards.get(id)! }));
    cluster = c;
    for (const guard of guards.values()) await guard.start();
    await c.startAll();
    expect(await eventually(() => c.metadataLeader() !== undefined, 5000)).toBe(true);
    const created = await c.metadataLeader()!.proposeMetadata(
      {
        type: 'createTopic',
        name: 't',
        partitions: 1,
        replicationFactor: 3,
        config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
      },
      5000,
    );
    expect(created.ok).toBe(true);
    const groupId = c.metadataLeader()!.metadata.topic('t').partitions[0]!.groupId;
    expect(await eventually(() => leaderOf(c, groupId) !== undefined, 5000)).toBe(true);
    const first = leaderOf(c, groupId)!;
    const record = (v: string) => [
      { key: null, value: new TextEncoder().encode(v), headers: null, timestampMs: null },
    ];
    expect((await produceLocal(first.node, first.local, record('a'), null, 5000)).baseOffset).toBe(0);

    // The leader's disk fills: its produce is refused, and its leadership moves within a look.
    free.get(first.node.nodeId)!.bytes = 5 * MIB;
    await guards.get(first.node.nodeId)!.check();
    const refused = await produceLocal(first.node, first.local, record('b'), null, 5000).catch((e) => e);
    expect(isBrokerError(refused, 'DISK_FULL') || isBrokerError(refused, 'NO_LEADER'), String(refused)).toBe(
      true,
    );
    expect(
      await eventually(
        () => (leaderOf(c, groupId)?.node.nodeId ?? first.node.nodeId) !== first.node.nodeId,
        5000,
      ),
    ).toBe(true);

    // The others commit without it; it turns their entries away.
    const second = leaderOf(c, groupId)!;
    expect((await produceLocal(second.node, second.local, record('c'), null, 5000)).baseOffset).toBe(1);
    expect(first.node.driver.droppedEntriesRefused).toBeGreaterThan(0);
    expect(first.local.machine.highWatermark).toBeLessThanOrEqual(1);

    // Space comes back: it takes the entries again and catches up, no restart.
    free.get(first.node.nodeId)!.bytes = 1000 * MIB;
    expect(await eventually(() => first.local.machine.highWatermark === 2, 5000)).toBe(true);
  });
});
