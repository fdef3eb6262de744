// `raftlog group list | describe | reset`, in-process against a scripted node: tables with lag,
// --json as the server's JSON, and a reset refused while the group has live members.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import type { GroupDescription } from '../../src/client/index.js';
import { errorReply, FakeNode, topicDescription } from '../client/fake-node.js';
import { TestIo } from './cli-io.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

const BILLING: GroupDescription = {
  group: 'billing',
  generation: 3,
  members: [
    {
      memberId: 'm-1',
      topics: ['orders'],
      assignments: [
        { topic: 'orders', partition: 0, offset: 18 },
        { topic: 'orders', partition: 1 },
      ],
      lastHeartbeatMs: 120,
    },
  ],
  offsets: [
    { topic: 'orders', partition: 1, offset: 5, highWatermark: 5, lag: 0 },
    { topic: 'orders', partition: 0, offset: 18, highWatermark: 40, lag: 22 },
  ],
};

function groupNode(group: GroupDescription = BILLING) {
  const node = new FakeNode();
  nodes.push(node);
  node.on('GET', /^\/v1\/groups$/, () => ({
    status: 200,
    body: {
      groups: [
        { group: 'billing', members: 1, generation: 3 },
        { group: 'audit', members: 0, generation: 7 },
      ],
    },
  }));
  node.on('GET', /^\/v1\/groups\/([^/]+)$/, () => ({ status: 200, body: group }));
  node.on('PUT', /^\/v1\/groups\/([^/]+)\/offsets$/, () => ({ status: 204 }));
  const orders = topicDescription('orders', 2);
  orders.partitions[0]!.logStartOffset = 10;
  orders.partitions[0]!.highWatermark = 40;
  orders.partitions[1]!.highWatermark = 5;
  node.on('GET', /^\/v1\/topics\/orders$/, () => ({ status: 200, body: orders }));
  return node;
}

async function group(node: FakeNode, ...args: string[]) {
  const io = new TestIo({ dispatcher: node.agent });
  const code = await runCli(['group', ...args], io);
  return { code, io };
}

describe('group list', () => {
  it('prints a table of groups, sorted', async () => {
    const { code, io } = await group(groupNode(), 'list');
    expect(code).toBe(0);
    expect(io.out).toBe('GROUP    MEMBERS  GENERATION\naudit    0        7\nbilling  1        3\n');
  });

  it('--json prints the JSON', async () => {
    const { io } = await group(groupNode(), 'list', '--json');
    expect(JSON.parse(io.out).groups).toHaveLength(2);
  });
});

describe('group describe', () => {
  it('prints the members and, per partition, the committed offset, high watermark and lag', async () => {
    const { code, io } = await group(groupNode(), 'describe', 'billing');
    expect(code).toBe(0);
    expect(io.out).toBe(
      [
        "group 'billing', generation 3, 1 live member(s)",
        '',
        'MEMBER  TOPICS  ASSIGNED           LAST HEARTBEAT',
        'm-1     orders  orders/0,orders/1  120 ms ago',
        '',
        'TOPIC   PARTITION  OFFSET  HIGH-WATERMARK  LAG',
        'orders  0          18      40              22',
        'orders  1          5       5               0',
        '',
      ].join('\n'),
    );
  });

  it('--json prints the description as the server gives it', async () => {
    const { io } = await group(groupNode(), 'describe', 'billing', '--json');
    expect(JSON.parse(io.out)).toEqual(BILLING);
  });

  it('reports a server error as one line, exit 1', async () => {
    const node = new FakeNode();
    nodes.push(node);
    node.on('GET', /^\/v1\/groups\/x$/, () => errorReply(503, 'NO_LEADER', 'no metadata leader'));
    const { code, io } = await group(node, 'describe', 'x');
    expect(code).toBe(1);
    expect(io.errLines).toEqual(['raftlog: no metadata leader (NO_LEADER)']);
  });
});

describe('group reset', () => {
  const idle: GroupDescription = { ...BILLING, members: [] };

  it('is refused while the group has live members: exit 1, nothing committed', async () => {
    const node = groupNode();
    const { code, io } = await group(node, 'reset', 'billing', '--topic', 'orders', '--to', 'earliest');
    expect(code).toBe(1);
    expect(io.errLines).toEqual([
      "raftlog: group 'billing' has 1 live member(s): stop them first (they would commit over the reset), or pass --force",
    ]);
    expect(node.sent('PUT', /offsets$/)).toEqual([]);
  });

  it('--force resets anyway', async () => {
    const node = groupNode();
    const args = ['reset', 'billing', '--topic', 'orders', '--to', 'latest', '--force'];
    expect((await group(node, ...args)).code).toBe(0);
    expect(node.sent('PUT', /offsets$/)[0]!.body).toEqual({
      offsets: [
        { topic: 'orders', partition: 0, offset: 40 },
        { topic: 'orders', partition: 1, offset: 5 },
      ],
    });
  });

  it('--to earliest commits each log start, with a table of before and after', async () => {
    const node = groupNode(idle);
    const { code, io } = await group(node, 'reset', 'billing', '--topic', 'orders', '--to', 'earliest');
    expect(code).toBe(0);
    expect(node.sent('PUT', /\/v1\/groups\/billing\/offsets$/)[0]!.body).toEqual({
      offsets: [
        { topic: 'orders', partition: 0, offset: 10 },
        { topic: 'orders', partition: 1, offset: 0 },
      ],
    });
    expect(io.out).toBe(
      [
        "reset group 'billing' on 'orders'",
        '',
        'TOPIC   PARTITION  FROM  TO',
        'orders  0          18    10',
        'orders  1          5     0',
        '',
      ].join('\n'),
    );
  });

  it('--to N is clamped to what is retained; --partition limits it; --json prints what was committed', async () => {
    const node = groupNode(idle);
    const args = ['reset', 'billing', '--topic', 'orders', '--to', '7', '--partition', '0', '--json'];
    const { code, io } = await group(node, ...args);
    expect(code).toBe(0);
    const committed = { offsets: [{ topic: 'orders', partition: 0, offset: 10 }] };
    expect(node.sent('PUT', /offsets$/)[0]!.body).toEqual(committed);
    expect(JSON.parse(io.out)).toEqual({ group: 'billing', ...committed });
  });

  it('refuses a partition the topic does not have, and a bad --to (exit 2)', async () => {
    const node = groupNode(idle);
    const missing = await group(
      node,
      'reset',
      'billing',
      '--topic',
      'orders',
      '--to',
      '0',
      '--partition',
      '5',
    );
    expect(missing.code).toBe(1);
    expect(missing.io.err).toBe("raftlog: topic 'orders' has no partition 5\n");
    const bad = await group(node, 'reset', 'billing', '--topic', 'orders', '--to', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.io.err).toMatch(/--to.*earliest, latest or an offset/);
    const noTopic = await group(node, 'reset', 'billing', '--to', '0');
    expect(noTopic.code).toBe(2);
    expect(node.sent('PUT', /offsets$/)).toEqual([]);
  });
});
