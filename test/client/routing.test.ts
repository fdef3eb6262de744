// The client learns the cluster from its bootstrap URLs and routes each request: produce straight
// to the partition's leader, fetches to a replica (readFrom), the rest to any node. A leader
// change (503 NO_LEADER, a forwarded answer's x-raftlog-served-by) or a dead node makes it ask
// again and retry, with the same producer sequence.

import { afterEach, describe, expect, it } from 'vitest';
import type { ProduceRequest, RaftlogOptions } from '../../src/client/index.js';
import { connectionRefused, errorReply, FakeNode, type FakeReply, type FakeRequest } from './fake-node.js';

const URLS = ['http://127.0.0.1:9091', 'http://127.0.0.1:9092', 'http://127.0.0.1:9093'];
const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/**
 * Three nodes on one MockAgent. Partition p of topic 't' is led by node `leaders[p]`, with
 * replicas 1, 2, 3. Each answer names its node (x-raftlog-node); `down` nodes refuse connections.
 */
function cluster(leaders: number[] = [1, 2, 3], advertised: string[] = URLS) {
  const node = new FakeNode(URLS[0]);
  nodes.push(node);
  for (const url of URLS.slice(1)) node.serve(url);
  /** forward: a node that does not lead answers as a node that forwarded to the leader would. */
  const state = { leaders: [...leaders], down: new Set<number>(), forward: false };
  const idOf = (request: FakeRequest) => URLS.indexOf(request.origin) + 1;
  const next = new Map<number, number>();
  const reply = (request: FakeRequest, body: () => FakeReply): FakeReply => {
    const id = idOf(request);
    if (state.down.has(id)) throw connectionRefused();
    const answer = body();
    return { ...answer, headers: { ...answer.headers, 'x-raftlog-node': String(id) } };
  };
  node.on('GET', /^\/v1\/cluster$/, (request) =>
    reply(request, () => ({
      status: 200,
      body: {
        clusterId: 'c',
        nodes: advertised.map((url, i) => ({ id: i + 1, url, alive: !state.down.has(i + 1) })),
        metadataLeader: 1,
      },
    })),
  );
  node.on('GET', /^\/v1\/topics\/t$/, (request) =>
    reply(request, () => ({
      status: 200,
      body: {
        name: 't',
        config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
        partitions: state.leaders.map((leader, partition) => ({
          partition,
          leader,
          term: 1,
          replicas: [1, 2, 3],
          logStartOffset: 0,
          highWatermark: 0,
        })),
      },
    })),
  );
  node.on('POST', /^\/v1\/topics\/t\/records$/, (request) =>
    reply(request, () => {
      const body = request.body as ProduceRequest;
      const partition = body.records[0]!.partition!;
      const leader = state.leaders[partition]!;
      if (leader !== idOf(request) && !state.forward) {
        return errorReply(503, 'NO_LEADER', 'not the leader', { headers: { 'retry-after': '0' } });
      }
      const offset = next.get(partition) ?? 0;
      next.set(partition, offset + body.records.length);
      return {
        status: 200,
        body: { offsets: body.records.map((_, i) => ({ partition, offset: offset + i })), duplicate: false },
        headers: leader === idOf(request) ? {} : { 'x-raftlog-served-by': String(leader) },
      };
    }),
  );
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request) =>
    reply(request, () => ({
      status: 200,
      body: { records: [], nextOffset: 0, highWatermark: 0, logStartOffset: 0 },
    })),
  );
  const client = (options: Omit<RaftlogOptions, 'dispatcher'> = {}) =>
    node.client({ urls: [URLS[0]!], direct: false, retry: { backoffMs: 1 }, ...options });
  const produces = () => node.sent('POST', /records$/);
  return { node, state, client, produces };
}

describe('produce routing', () => {
  it('sends each partition straight to its leader, after learning the nodes and the topic once', async () => {
    const { node, client, produces } = cluster([1, 2, 3]);
    const producer = client().producer({ lingerMs: 0 });
    for (let round = 0; round < 3; round++) {
      await producer.send(
        't',
        [0, 1, 2].map((partition) => ({ value: 'v', partition })),
      );
    }
    for (const request of produces()) {
      const partition = (request.body as ProduceRequest).records[0]!.partition!;
      expect(request.origin).toBe(URLS[partition]);
    }
    expect(produces()).toHaveLength(9);
    expect(node.sent('GET', /^\/v1\/topics\/t$/)).toHaveLength(1);
    expect(node.sent('GET', /^\/v1\/cluster$/)).toHaveLength(1);
  });

  it('after NO_LEADER asks for the leaders again and retries at the new one, same sequence', async () => {
    const { state, client, produces, node } = cluster([1, 1, 1]);
    const producer = client().producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]);
    state.leaders[0] = 3; // Leadership moved.
    await expect(producer.send('t', [{ value: 'b', partition: 0 }])).resolves.toMatchObject([{ offset: 1 }]);
    const last = produces().slice(-2);
    expect(last.map((r) => r.origin)).toEqual([URLS[0], URLS[2]]);
    expect(last.map((r) => (r.body as ProduceRequest).producer!.sequence)).toEqual([1, 1]);
    expect(node.sent('GET', /^\/v1\/topics\/t$/)).toHaveLength(2);
  });

  it('learns the leader from a forwarded answer (x-raftlog-served-by) without asking', async () => {
    const { node, client, produces } = cluster([1]);
    // Node 1 forwards to node 2, which leads now.
    node.on('POST', /^\/v1\/topics\/t\/records$/, (request) => {
      const id = URLS.indexOf(request.origin) + 1;
      return {
        status: 200,
        body: { offsets: [{ partition: 0, offset: 0 }], duplicate: false },
        headers: { 'x-raftlog-node': String(id), ...(id === 1 ? { 'x-raftlog-served-by': '2' } : {}) },
      };
    });
    const producer = client().producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]);
    await producer.send('t', [{ value: 'b', partition: 0 }]);
    expect(produces().map((r) => r.origin)).toEqual([URLS[0], URLS[1]]);
    expect(node.sent('GET', /^\/v1\/topics\/t$/)).toHaveLength(1);
  });

  it('moves on from a dead node at once, and skips it while it is down', async () => {
    const { state, client, produces } = cluster([2]);
    const raftlog = client({ urls: URLS });
    const producer = raftlog.producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]); // Learns the cluster.
    state.down.add(2);
    state.leaders[0] = 3; // Node 2 died; node 3 was elected.
    const startedMs = Date.now();
    await expect(producer.send('t', [{ value: 'b', partition: 0 }])).resolves.toMatchObject([{ offset: 1 }]);
    expect(Date.now() - startedMs).toBeLessThan(1000);
    expect(produces().at(-1)!.origin).toBe(URLS[2]);
    // The same sequence went to the dead node and to the new leader: no gap, no duplicate.
    const sequences = produces()
      .slice(1)
      .map((r) => (r.body as ProduceRequest).producer!.sequence);
    expect(new Set(sequences)).toEqual(new Set([1]));
    await producer.send('t', [{ value: 'c', partition: 0 }]);
    expect(produces().filter((r) => r.origin === URLS[1])).toHaveLength(2); // 'a', and 'b' once.
  });

  it('given one URL and a described topic, moves on to the other nodes when that one dies', async () => {
    const { state, client, produces, node } = cluster([1]);
    const raftlog = client();
    await raftlog.describeTopic('t'); // The route: the first send needs no lookup of its own.
    const producer = raftlog.producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]);
    expect(node.sent('GET', /^\/v1\/cluster$/)).toHaveLength(1);
    state.down.add(1);
    state.leaders[0] = 2; // The only node it was given died; node 2 was elected.
    await expect(producer.send('t', [{ value: 'b', partition: 0 }])).resolves.toMatchObject([{ offset: 1 }]);
    expect(produces().at(-1)!.origin).toBe(URLS[1]);
  });

  it('prefers the URL the user gave over the one the cluster advertises for the same node', async () => {
    const { client, produces } = cluster([1], ['http://10.9.9.1:9090', URLS[1]!, URLS[2]!]);
    const producer = client().producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]);
    await producer.send('t', [{ value: 'b', partition: 0 }]);
    expect(produces().map((r) => r.origin)).toEqual([URLS[0], URLS[0]]);
  });

  it('works from the bootstrap URL alone when the node has no /v1/cluster', async () => {
    const { node, client, produces, state } = cluster([2]);
    state.forward = true;
    node.on('GET', /^\/v1\/cluster$/, () => ({ status: 404, body: 'not here' }));
    const producer = client().producer({ lingerMs: 0 });
    await producer.send('t', [{ value: 'a', partition: 0 }]);
    await producer.send('t', [{ value: 'b', partition: 0 }]);
    // Node 2's URL is unknown: the bootstrap node forwards, every time.
    expect(produces().map((r) => r.origin)).toEqual([URLS[0], URLS[0]]);
  });
});

describe('requests any node serves', () => {
  it('move on from a node that answers NO_LEADER (cut off from a majority) to another node', async () => {
    const { node, state } = cluster();
    const noLeader = new Set([1]); // Node 1 is on the minority side: it answers, but cannot serve.
    node.on('GET', /^\/v1\/groups$/, (request) => {
      const id = URLS.indexOf(request.origin) + 1;
      if (state.down.has(id)) throw connectionRefused();
      const headers = { 'x-raftlog-node': String(id) };
      if (noLeader.has(id)) return errorReply(503, 'NO_LEADER', 'no metadata leader', { headers });
      return { status: 200, body: { groups: [{ group: 'g', members: 1, generation: 1 }] }, headers };
    });
    const raftlog = node.client({ urls: URLS, direct: false, retry: { backoffMs: 1, attemptsMax: 4 } });
    await expect(raftlog.listGroups()).resolves.toEqual([{ group: 'g', members: 1, generation: 1 }]);
    const asked = node.sent('GET', /^\/v1\/groups$/).map((r) => r.origin);
    expect(asked).toEqual([URLS[0], URLS[1]]);
    // The node that served is asked first next time.
    await raftlog.listGroups();
    expect(node.sent('GET', /^\/v1\/groups$/).at(-1)!.origin).toBe(URLS[1]);
  });
});

describe('fetch routing', () => {
  async function fetchOrigins(readFrom: 'leader' | 'any' | 'follower', partitions: number) {
    const { client, node } = cluster(Array.from({ length: partitions }, (_, p) => (p % 3) + 1));
    const raftlog = client({ readFrom });
    await raftlog.cluster();
    for (let p = 0; p < partitions; p++) await raftlog.fetch('t', p);
    return node.sent('GET', /records$/).map((r) => ({
      partition: Number(r.path.split('/')[5]),
      origin: r.origin,
    }));
  }

  it("readFrom 'leader' reads each partition from its leader", async () => {
    for (const { partition, origin } of await fetchOrigins('leader', 6))
      expect(origin).toBe(URLS[partition % 3]);
  });

  it("readFrom 'any' spreads partitions over the replicas", async () => {
    const origins = new Set((await fetchOrigins('any', 6)).map((f) => f.origin));
    expect(origins.size).toBe(3);
  });

  it("readFrom 'follower' avoids the leader", async () => {
    for (const { partition, origin } of await fetchOrigins('follower', 6)) {
      expect(origin).not.toBe(URLS[partition % 3]);
    }
  });

  it('moves to another replica when one is down', async () => {
    const { client, state, node } = cluster([1]);
    const raftlog = client({ readFrom: 'follower' });
    await raftlog.cluster();
    await raftlog.fetch('t', 0);
    const first = node.sent('GET', /records$/)[0]!.origin;
    state.down.add(URLS.indexOf(first) + 1);
    await raftlog.fetch('t', 0);
    const origins = node.sent('GET', /records$/).map((r) => r.origin);
    expect(origins.at(-1)).not.toBe(first);
  });
});
