// A producer writing to many partitions at once has one request in flight per partition, each
// listening on the producer's stop signal: that is no leak, and must not print Node's
// MaxListenersExceededWarning on the user's stderr (raftlog produce did, on a topic of 6).

import { afterEach, expect, it } from 'vitest';
import type { ProduceRequest } from '../../src/client/index.js';
import { FakeNode, topicDescription } from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

it('sends to 40 partitions at once without a MaxListenersExceededWarning', async () => {
  const node = new FakeNode();
  nodes.push(node);
  const partitions = 40;
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', partitions) }));
  node.on('POST', /^\/v1\/topics\/t\/records$/, (request) => {
    const body = request.body as ProduceRequest;
    const offsets = body.records.map((record) => ({ partition: record.partition!, offset: 0 }));
    return { status: 200, body: { offsets, duplicate: false } };
  });
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const client = node.client();
    const producer = client.producer({ lingerMs: 0 });
    await producer.send(
      't',
      Array.from({ length: partitions }, (_, partition) => ({ value: 'v', partition })),
    );
    await producer.close();
    await client.close();
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
});
