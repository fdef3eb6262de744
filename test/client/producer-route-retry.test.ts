// A produce retry whose route lookup fails (the topic's description cannot be had for a moment,
// as while a killed node's partitions elect new leaders) is one failed attempt of the producer's
// retry budget, not the end of the send: the next attempt looks the route up again.

import { afterEach, describe, expect, it } from 'vitest';
import type { ProduceRequest } from '../../src/client/index.js';
import { errorReply, FakeNode, topicDescription } from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

describe('producer retry across a failed route lookup', () => {
  it('retries the same batch, same sequence, after the route lookup itself failed', async () => {
    const node = new FakeNode();
    nodes.push(node);
    // The client's own retries of a lookup: 1 attempt, so one refusal fails the lookup.
    const client = node.client({ direct: false, retry: { attemptsMax: 1 } });
    let describeRefusals = 0;
    let produceRefusals = 1;
    node.on('GET', /^\/v1\/cluster$/, () => ({
      status: 200,
      body: { clusterId: 'c', nodes: [{ id: 1, url: node.url, alive: true }], metadataLeader: 1 },
    }));
    node.on('GET', /^\/v1\/topics\/t$/, () =>
      describeRefusals-- > 0
        ? errorReply(503, 'NO_LEADER', 'no leader yet')
        : { status: 200, body: topicDescription('t', 1) },
    );
    node.on('POST', /^\/v1\/topics\/t\/records$/, (request) => {
      if (produceRefusals-- > 0) {
        // The refusal makes the producer ask for the route again; that lookup fails twice.
        describeRefusals = 2;
        return errorReply(504, 'TIMEOUT', 'not committed in time');
      }
      const body = request.body as ProduceRequest;
      return {
        status: 200,
        body: { offsets: body.records.map((_, offset) => ({ partition: 0, offset })), duplicate: false },
      };
    });
    const producer = client.producer({
      lingerMs: 0,
      retry: { attemptsMax: 10, backoffMs: 1, backoffMsMax: 2 },
    });
    const results = await producer.send('t', [{ value: 'a' }, { value: 'b' }]);
    expect(results.map((r) => r.offset)).toEqual([0, 1]);
    const produces = node.sent('POST', /records$/).map((r) => r.body as ProduceRequest);
    expect(produces).toHaveLength(2);
    expect(produces[1]).toEqual(produces[0]);
    expect(produces[1]!.producer?.sequence).toBe(0);
    await producer.close();
    await client.close();
  });
});
