// Consumer-group membership over the HTTP API of an in-process 3-node cluster: join, heartbeat,
// leave and describe with each call on another node, revoke-before-assign, fenced commits,
// session expiry, every error code, and members that outlive a metadata leader change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../broker/in-process-cluster.js';
import { InProcessApi } from './in-process-api.js';

let api: InProcessApi;
/** Each call goes to the next node: a member never talks to the same node twice in a row. */
let turn = 0;

beforeAll(async () => {
  api = new InProcessApi(3);
  await api.start();
  expect((await call('POST', '/v1/topics', { name: 'orders', partitions: 4 })).status).toBe(201);
  expect((await call('POST', '/v1/topics', { name: 'audit', partitions: 1 })).status).toBe(201);
  for (let partition = 0; partition < 4; partition++) {
    const records = Array.from({ length: 5 }, (_, i) => ({ value: `v${i}`, partition }));
    const res = await call('POST', '/v1/topics/orders/records', { records });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
}, 30_000);

afterAll(async () => {
  await api.stop();
});

function liveNodes(): number[] {
  return [...api.cluster.nodes.keys()].sort();
}

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
  const nodes = liveNodes();
  const node = nodes[turn++ % nodes.length]!;
  const { status, body: parsed } = await api.json(node, method, url, body);
  return { status, body: parsed, node };
}

interface Member {
  group: string;
  memberId: string;
  generation: number;
  owns: string[];
}

async function join(group: string, topics = ['orders'], sessionTimeoutMs?: number): Promise<Member> {
  const res = await call('POST', `/v1/groups/${group}/members`, {
    topics,
    ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return { group, memberId: res.body.memberId, generation: res.body.generation, owns: ownsOf(res.body) };
}

function ownsOf(body: { assignments: Array<{ topic: string; partition: number }> }): string[] {
  return body.assignments.map((a) => `${a.topic}/${a.partition}`);
}

/** A heartbeat with the member's last generation; updates what it owns. Returns the answer. */
async function heartbeat(member: Member) {
  const res = await call('POST', `/v1/groups/${member.group}/members/${member.memberId}/heartbeat`, {
    generation: member.generation,
  });
  if (res.status === 200) {
    member.generation = res.body.generation;
    member.owns = ownsOf(res.body);
  }
  return res;
}

describe('group membership', () => {
  it('joins, heartbeats, describes and leaves, each call on another node', async () => {
    const a = await join('solo');
    expect(a.memberId).toMatch(/^m-[0-9a-f]{16}$/);
    expect(a.generation).toBe(1);
    expect(a.owns).toEqual(['orders/0', 'orders/1', 'orders/2', 'orders/3']);
    const beat = await heartbeat(a);
    expect(beat.status).toBe(200);
    expect(beat.body).toEqual({
      memberId: a.memberId,
      generation: 1,
      heartbeatIntervalMs: 1500,
      assignments: [0, 1, 2, 3].map((partition) => ({ topic: 'orders', partition })),
    });
    const described = await call('GET', '/v1/groups/solo');
    expect(described.status).toBe(200);
    expect(described.body).toMatchObject({ group: 'solo', generation: 1, offsets: [] });
    expect(described.body.members).toHaveLength(1);
    expect(described.body.members[0]).toMatchObject({
      memberId: a.memberId,
      topics: ['orders'],
      sessionTimeoutMs: 10_000,
      revoking: [],
    });
    expect(described.body.members[0].lastHeartbeatMs).toBeGreaterThanOrEqual(0);
    expect(described.body.members[0].lastHeartbeatMs).toBeLessThan(5000);
    const left = await call('DELETE', `/v1/groups/solo/members/${a.memberId}`);
    expect(left.status).toBe(204);
    expect(await call('GET', '/v1/groups/solo')).toMatchObject({
      status: 200,
      body: { group: 'solo', generation: 0, members: [], offsets: [] },
    });
    expect((await heartbeat(a)).body.error.code).toBe('UNKNOWN_MEMBER');
  });

  it('gives a partition to its new owner only after the old owner heartbeated past its revocation', async () => {
    const a = await join('pair');
    const b = await join('pair');
    expect(b.generation).toBe(2);
    expect(b.owns).toEqual([]);
    // a learns of the revocation on its next heartbeat; b still waits, asked to come sooner.
    await heartbeat(a);
    expect(a.generation).toBe(2);
    expect(a.owns).toHaveLength(2);
    const waiting = await heartbeat(b);
    expect(waiting.body.heartbeatIntervalMs).toBe(500);
    expect(b.owns).toEqual([]);
    // a's next heartbeat carries generation 2: it has seen the revocation, so b gets them.
    await heartbeat(a);
    await heartbeat(b);
    expect(b.owns).toHaveLength(2);
    expect([...a.owns, ...b.owns].sort()).toEqual(['orders/0', 'orders/1', 'orders/2', 'orders/3']);
    // Leaving moves a's partitions to b at once.
    expect((await call('DELETE', `/v1/groups/pair/members/${a.memberId}`)).status).toBe(204);
    await heartbeat(b);
    expect(b.generation).toBe(3);
    expect(b.owns).toEqual(['orders/0', 'orders/1', 'orders/2', 'orders/3']);
  });

  it('commits only what a member owns in its generation: fenced commits', async () => {
    const a = await join('fence');
    const commit = (offsets: Array<[number, number]>, fence: Record<string, unknown>) =>
      call('PUT', '/v1/groups/fence/offsets', {
        offsets: offsets.map(([partition, offset]) => ({ topic: 'orders', partition, offset })),
        ...fence,
      });
    const ok = await commit(
      [
        [0, 3],
        [2, 4],
      ],
      { memberId: a.memberId, generation: a.generation },
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(204);
    // The committed offsets come with the assignment.
    expect((await heartbeat(a)).body.assignments).toEqual([
      { topic: 'orders', partition: 0, offset: 3 },
      { topic: 'orders', partition: 1 },
      { topic: 'orders', partition: 2, offset: 4 },
      { topic: 'orders', partition: 3 },
    ]);
    const b = await join('fence');
    for (let i = 0; i < 2; i++) {
      await heartbeat(a);
      await heartbeat(b);
    }
    const notOwned = Number(b.owns[0]!.split('/')[1]);
    const owned = Number(a.owns[0]!.split('/')[1]);
    const stale = await commit(
      [
        [owned, 1],
        [notOwned, 1],
      ],
      { memberId: a.memberId, generation: a.generation },
    );
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('STALE_GENERATION');
    const unknown = await commit([[owned, 1]], { memberId: 'm-0000000000000000', generation: 2 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('UNKNOWN_MEMBER');
    expect((await commit([[owned, 1]], { memberId: a.memberId })).status).toBe(400);
    expect((await commit([[owned, 1]], { generation: 2 })).status).toBe(400);
    // Nothing of the refused commits was committed.
    const read = await call('GET', '/v1/groups/fence/offsets');
    expect(read.body.offsets).toEqual([
      { topic: 'orders', partition: 0, offset: 3 },
      { topic: 'orders', partition: 2, offset: 4 },
    ]);
    expect((await commit([[notOwned, 2]], { memberId: b.memberId, generation: b.generation })).status).toBe(
      204,
    );
    // An administrator's commit (no member) is not fenced.
    expect((await commit([[owned, 5]], {})).status).toBe(204);
  });

  it('expires a member that stops heartbeating and gives its partitions to the others', async () => {
    const quiet = await join('expiry', ['orders'], 1000);
    const lastHeartbeatMs = Date.now();
    const busy = await join('expiry', ['orders'], 60_000);
    expect(busy.generation).toBe(2);
    const expired = await eventually(() => {
      const description = api.cluster.metadataLeader()?.metadata.memberships.describe('expiry');
      return description?.members.length === 1;
    }, 5000);
    expect(expired).toBe(true);
    expect(Date.now() - lastHeartbeatMs).toBeGreaterThanOrEqual(1000);
    const gone = await heartbeat(quiet);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('UNKNOWN_MEMBER');
    await heartbeat(busy);
    expect(busy.generation).toBe(3);
    expect(busy.owns).toEqual(['orders/0', 'orders/1', 'orders/2', 'orders/3']);
    expect((await call('DELETE', `/v1/groups/expiry/members/${busy.memberId}`)).status).toBe(204);
  });

  it('lists groups and describes one with offsets, high watermarks and lag', async () => {
    const m = await join('listed', ['orders', 'audit']);
    const put = await call('PUT', '/v1/groups/listed/offsets', {
      offsets: [{ topic: 'orders', partition: 1, offset: 2 }],
      memberId: m.memberId,
      generation: m.generation,
    });
    expect(put.status).toBe(204);
    expect(
      (
        await call('PUT', '/v1/groups/offsets-only/offsets', {
          offsets: [{ topic: 'orders', partition: 0, offset: 1 }],
        })
      ).status,
    ).toBe(204);
    const list = await call('GET', '/v1/groups');
    expect(list.status).toBe(200);
    expect(list.body.groups).toEqual(
      expect.arrayContaining([
        { group: 'listed', members: 1, generation: 1 },
        { group: 'offsets-only', members: 0, generation: 0 },
      ]),
    );
    const names = list.body.groups.map((g: { group: string }) => g.group);
    expect(names).toEqual([...names].sort());
    const described = await call('GET', '/v1/groups/listed');
    expect(described.body.members[0].topics).toEqual(['audit', 'orders']);
    expect(described.body.members[0].assignments).toHaveLength(5);
    expect(described.body.offsets).toEqual([
      { topic: 'orders', partition: 1, offset: 2, highWatermark: 5, lag: 3 },
    ]);
  });

  it('sees every membership change answered before the read, on every node', async () => {
    for (let round = 0; round < 3; round++) {
      const m = await join('fresh');
      for (const node of liveNodes()) {
        const res = await api.json(node, 'GET', '/v1/groups/fresh');
        expect(res.body.members.map((x: { memberId: string }) => x.memberId)).toEqual([m.memberId]);
      }
      expect((await call('DELETE', `/v1/groups/fresh/members/${m.memberId}`)).status).toBe(204);
      for (const node of liveNodes()) {
        expect((await api.json(node, 'GET', '/v1/groups/fresh')).body.members).toEqual([]);
      }
    }
  });

  it('refuses bad input with coded errors', async () => {
    const m = await join('errors');
    const cases: Array<[string, string, unknown, number, string]> = [
      [
        'POST',
        '/v1/groups/errors/members',
        { topics: ['orders'], sessionTimeoutMs: 999 },
        400,
        'INVALID_REQUEST',
      ],
      [
        'POST',
        '/v1/groups/errors/members',
        { topics: ['orders'], sessionTimeoutMs: 300_001 },
        400,
        'INVALID_REQUEST',
      ],
      ['POST', '/v1/groups/errors/members', { topics: [] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/groups/errors/members', { topics: ['orders'], extra: 1 }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/groups/errors/members', { topics: ['nope'] }, 404, 'UNKNOWN_TOPIC'],
      ['POST', '/v1/groups/errors/members', { topics: ['../x'] }, 400, 'INVALID_TOPIC_NAME'],
      ['POST', '/v1/groups/a%20b/members', { topics: ['orders'] }, 400, 'INVALID_REQUEST'],
      ['POST', `/v1/groups/errors/members/${m.memberId}/heartbeat`, {}, 400, 'INVALID_REQUEST'],
      [
        'POST',
        `/v1/groups/errors/members/${m.memberId}/heartbeat`,
        { generation: 99 },
        400,
        'INVALID_REQUEST',
      ],
      [
        'POST',
        '/v1/groups/errors/members/m-0123456789abcdef/heartbeat',
        { generation: 1 },
        404,
        'UNKNOWN_MEMBER',
      ],
      [
        'POST',
        '/v1/groups/nogroup/members/m-0123456789abcdef/heartbeat',
        { generation: 1 },
        404,
        'UNKNOWN_MEMBER',
      ],
      ['DELETE', '/v1/groups/errors/members/m-0123456789abcdef', undefined, 404, 'UNKNOWN_MEMBER'],
      ['GET', '/v1/groups/a%20b', undefined, 400, 'INVALID_REQUEST'],
    ];
    for (const [method, url, body, status, code] of cases) {
      const res = await call(method as 'GET' | 'POST' | 'DELETE', url, body);
      expect(res.status, `${method} ${url} ${JSON.stringify(body)} on ${res.node}`).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
    // None of the refused joins made a member.
    expect((await call('GET', '/v1/groups/errors')).body.members).toHaveLength(1);
  });

  it('keeps every member through a metadata leader change (sessions restart on the new leader)', async () => {
    const members = [await join('failover', ['orders'], 2000), await join('failover', ['orders'], 2000)];
    const generation = members[1]!.generation;
    const leader = api.cluster.metadataLeader()!;
    await api.cluster.kill(leader.nodeId);
    const until = Date.now() + 3000;
    let answered = 0;
    while (Date.now() < until) {
      for (const member of members) {
        const res = await heartbeat(member);
        // While a new leader is elected the call may fail; a member retries.
        if (res.status === 200) answered++;
        else expect([503, 504], JSON.stringify(res.body)).toContain(res.status);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(answered).toBeGreaterThan(10);
    const described = await call('GET', '/v1/groups/failover');
    expect(described.body.members).toHaveLength(2);
    expect(described.body.generation).toBe(generation);
    expect([...members[0]!.owns, ...members[1]!.owns].sort()).toEqual([
      'orders/0',
      'orders/1',
      'orders/2',
      'orders/3',
    ]);
  });
});
