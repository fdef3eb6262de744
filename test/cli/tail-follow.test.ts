// `raftlog tail --follow` switching from its stream to fetch, against a scripted node: it learns
// the cluster first, and no partition skips records on the switch, even from `latest`.

import { afterEach, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import type { FakeNode } from '../client/fake-node.js';
import { TestIo, until } from './cli-io.js';
import { logNode, text } from './tail-fake.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

it('from latest, a partition the stream showed nothing of goes on from where it stood when tail started', async () => {
  // Partition 0 holds 2 records and partition 1 one when tail starts.
  const log = logNode('t', [[text('a'), text('b')], [text('x')]]);
  const { node } = log;
  nodes.push(node);
  node.on('GET', /^\/v1\/cluster$/, () => ({
    status: 200,
    body: { clusterId: 'c', nodes: [{ id: 1, url: node.url, alive: true }], metadataLeader: 1 },
  }));
  node.on('GET', /^\/v1\/topics\/t\/stream$/, () => {
    // While the stream opens, partition 0 gets a record; the stream shows partition 1's new one, then ends.
    log.logs[0]!.push(text('c'));
    log.logs[1]!.push(text('y'));
    return {
      status: 200,
      body: `${JSON.stringify({ partition: 1, offset: 1, value: Buffer.from('y').toString('base64'), timestamp: 1 })}\n`,
      headers: { 'content-type': 'application/x-ndjson' },
    };
  });
  const io = new TestIo({ dispatcher: node.agent });
  const done = runCli(['tail', 't', '--follow'], io);
  await until(() => io.outLines.length === 2, 'the stream record and the one committed meanwhile');
  io.interrupt('SIGINT');
  expect(await done).toBe(0);
  expect(io.outLines).toEqual(['1:1 - y', '0:2 - c']);
  expect(io.err).toBe('raftlog: the stream ended; following by fetch\n');
  expect(node.sent('GET', /^\/v1\/cluster$/)).toHaveLength(1); // Nodes learned before streaming.
  const firstFetches = new Map<string, string>();
  for (const fetch of node.sent('GET', /records$/)) {
    const partition = fetch.path.split('/')[5]!;
    if (!firstFetches.has(partition)) firstFetches.set(partition, fetch.query.offset!);
  }
  // Partition 0 from the high watermark seen before the stream (not 'latest': c would be lost),
  // partition 1 after the record the stream printed.
  expect(Object.fromEntries(firstFetches)).toEqual({ '0': '2', '1': '2' });
});
