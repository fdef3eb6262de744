// `raftlog tail --group G`: a member of the group (join, read the assigned partitions from the
// committed offsets, leave) that commits only what it printed, against a scripted node.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import type { Assignment } from '../../src/client/index.js';
import type { FakeNode } from '../client/fake-node.js';
import { TestIo, until } from './cli-io.js';
import { logNode, type StoredRecord, text } from './tail-fake.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

function records(n: number): StoredRecord[] {
  return Array.from({ length: n }, (_, i) => text(`v${i}`, { key: `k${i}` }));
}

/** Topic t and group g, whose only member is given `assignments`. */
function groupFixture(logs: StoredRecord[][], assignments: Assignment[]) {
  const fixture = logNode('t', logs);
  const { node } = fixture;
  nodes.push(node);
  const answer = { memberId: 'm-1', generation: 4, heartbeatIntervalMs: 3000, assignments };
  node.on('POST', /^\/v1\/groups\/g\/members$/, () => ({ status: 200, body: answer }));
  node.on('POST', /^\/v1\/groups\/g\/members\/m-1\/heartbeat$/, () => ({ status: 200, body: answer }));
  node.on('DELETE', /^\/v1\/groups\/g\/members\/m-1$/, () => ({ status: 204 }));
  node.on('PUT', /^\/v1\/groups\/g\/offsets$/, () => ({ status: 204 }));
  return fixture;
}

function commits(node: FakeNode) {
  return node.sent('PUT', /^\/v1\/groups\/g\/offsets$/).map((r) => r.body);
}

describe('tail --group', () => {
  it('with --count commits the offset after the last printed record, not after what was fetched', async () => {
    const { node } = groupFixture([records(5)], [{ topic: 't', partition: 0 }]);
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 't', '--group', 'g', '--count', '3'], io)).toBe(0);
    expect(io.outLines).toEqual(['0:0 k0 v0', '0:1 k1 v1', '0:2 k2 v2']);
    // One fetch brought all five records; three were printed.
    expect(node.sent('GET', /records$/)[0]!.query.encoding).toBe('base64');
    expect(commits(node)).toEqual([
      { offsets: [{ topic: 't', partition: 0, offset: 3 }], memberId: 'm-1', generation: 4 },
    ]);
    expect(node.sent('DELETE', /members\/m-1$/)).toHaveLength(1); // It left the group.
  });

  it('starts at the committed offsets, reads its assignment to the end, commits and leaves', async () => {
    const { node } = groupFixture(
      [records(4), records(2), records(3)],
      [
        { topic: 't', partition: 0, offset: 2 },
        { topic: 't', partition: 2 },
      ],
    );
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['tail', 't', '--group', 'g'], io)).toBe(0);
    expect(io.outLines.sort()).toEqual(['0:2 k2 v2', '0:3 k3 v3', '2:0 k0 v0', '2:1 k1 v1', '2:2 k2 v2']);
    expect(node.sent('GET', /partitions\/1\//)).toEqual([]); // Not assigned to it.
    expect(commits(node)).toEqual([
      {
        offsets: [
          { topic: 't', partition: 0, offset: 4 },
          { topic: 't', partition: 2, offset: 3 },
        ],
        memberId: 'm-1',
        generation: 4,
      },
    ]);
  });

  it('--offset latest applies where nothing is committed; --follow until Ctrl-C commits what was printed', async () => {
    const fixture = groupFixture([records(3)], [{ topic: 't', partition: 0 }]);
    const { node } = fixture;
    const io = new TestIo({ dispatcher: node.agent });
    const done = runCli(['tail', 't', '--group', 'g', '--follow', '--offset', 'latest'], io);
    await until(() => node.sent('GET', /records$/).length >= 1, 'the first fetch');
    expect(node.sent('GET', /records$/)[0]!.query.offset).toBe('latest');
    fixture.logs[0]!.push(text('new', { key: 'k3' }));
    await until(() => io.outLines.length === 1, 'the new record');
    io.interrupt('SIGINT');
    expect(await done).toBe(0);
    expect(io.outLines).toEqual(['0:3 k3 new']);
    expect(commits(node).at(-1)).toEqual({
      offsets: [{ topic: 't', partition: 0, offset: 4 }],
      memberId: 'm-1',
      generation: 4,
    });
  });
});
