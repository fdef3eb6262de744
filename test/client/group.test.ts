// A consumer with `group` joins, heartbeats, reads only its assignment, commits fenced (memberId
// and generation), lets revoked partitions go only after committing what was finished, rejoins
// when the member is unknown (without committing), refreshes on STALE_GENERATION, and leaves on
// close(). Against a scripted coordinator; the real one: cluster.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import type { Assignment, GroupOffset } from '../../src/client/index.js';
import { errorReply, FakeNode, type FakeRequest, topicDescription } from './fake-node.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

interface Commit {
  offsets: GroupOffset[];
  memberId?: string;
  generation?: number;
}

/** A node with a topic of `logs.length` partitions and a coordinator the test scripts. */
function groupNode(logs: string[][]) {
  const node = new FakeNode();
  nodes.push(node);
  const script = {
    generation: 1,
    /** What every member is given (one member at a time here). */
    assignments: logs.map((_, partition) => ({ topic: 't', partition })) as Assignment[],
    heartbeatIntervalMs: 20,
    unknownMember: false,
    staleCommits: 0,
    joins: 0,
  };
  const commits: Commit[] = [];
  const answer = (memberId: string) => ({
    memberId,
    generation: script.generation,
    heartbeatIntervalMs: script.heartbeatIntervalMs,
    assignments: script.assignments,
  });
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', logs.length) }));
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request, match) => {
    const log = logs[Number(match[1])]!;
    const raw = request.query.offset ?? 'earliest';
    const offset = raw === 'earliest' ? 0 : raw === 'latest' ? log.length : Number(raw);
    const records = log
      .slice(offset, offset + 2)
      .map((value, i) => ({ offset: offset + i, value, timestamp: 0 }));
    return {
      status: 200,
      body: { records, nextOffset: offset + records.length, highWatermark: log.length, logStartOffset: 0 },
    };
  });
  node.on('POST', /^\/v1\/groups\/g\/members$/, () => {
    script.joins++;
    script.unknownMember = false;
    return { status: 200, body: answer(`m-${script.joins}`) };
  });
  node.on('POST', /^\/v1\/groups\/g\/members\/([^/]+)\/heartbeat$/, (_request, match) => {
    if (script.unknownMember) return errorReply(404, 'UNKNOWN_MEMBER', 'expired');
    return { status: 200, body: answer(match[1]!) };
  });
  node.on('DELETE', /^\/v1\/groups\/g\/members\/([^/]+)$/, () => ({ status: 204 }));
  node.on('PUT', /^\/v1\/groups\/g\/offsets$/, (request) => {
    if (script.staleCommits > 0) {
      script.staleCommits--;
      return errorReply(409, 'STALE_GENERATION', 'old generation');
    }
    commits.push(request.body as Commit);
    return { status: 204 };
  });
  const heartbeats = () => node.sent('POST', /heartbeat$/);
  return { node, script, commits, heartbeats };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function index(request: FakeRequest, requests: FakeRequest[]): number {
  return requests.indexOf(request);
}

describe('membership', () => {
  it('joins with its topic and session, reads only its assignment, from the committed offset', async () => {
    const { node, script } = groupNode([['a', 'b'], ['x', 'y', 'z'], ['q']]);
    script.assignments = [{ topic: 't', partition: 1, offset: 1 }];
    const assigned: number[][] = [];
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      sessionTimeoutMs: 5000,
      onAssign: (partitions) => {
        assigned.push(partitions.map((p) => p.partition));
      },
    });
    const seen: string[] = [];
    for await (const record of consumer) {
      seen.push(`${record.partition}:${record.value}`);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['1:y', '1:z']);
    expect(assigned).toEqual([[1]]);
    expect(consumer.assignment()).toEqual([1]);
    expect(node.sent('POST', /members$/)[0]!.body).toEqual({ topics: ['t'], sessionTimeoutMs: 5000 });
    await consumer.close();
  });

  it('heartbeats in the background at the interval the server asks, with the generation it applied', async () => {
    const { node, heartbeats } = groupNode([['a']]);
    const consumer = node.client().consumer({ topic: 't', group: 'g' });
    const iterator = consumer.records();
    await iterator.next();
    await until(() => heartbeats().length >= 3);
    expect(heartbeats()[0]!.body).toEqual({ generation: 1 });
    expect(heartbeats()[0]!.path).toBe('/v1/groups/g/members/m-1/heartbeat');
    await iterator.return?.();
    await consumer.close();
  });

  it('commits fenced: memberId and the generation', async () => {
    const { node, commits } = groupNode([['a', 'b', 'c']]);
    const consumer = node.client().consumer({ topic: 't', group: 'g', autoCommit: false });
    const iterator = consumer.records();
    await iterator.next();
    await iterator.next();
    await consumer.commit();
    expect(commits).toEqual([
      { offsets: [{ topic: 't', partition: 0, offset: 1 }], memberId: 'm-1', generation: 1 },
    ]);
    await iterator.return?.();
    await consumer.close();
  });

  it('on a rebalance: stops delivering the revoked partition, calls onRevoke, commits it, then heartbeats the new generation', async () => {
    const tail = Array.from({ length: 20 }, (_, i) => `x${i}`);
    const { node, script, commits, heartbeats } = groupNode([['a', 'b', 'c', 'd'], tail]);
    const events: string[] = [];
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      onAssign: (partitions) => {
        events.push(`assign ${partitions.map((p) => p.partition)}`);
      },
      onRevoke: (partitions, reason) => {
        events.push(`revoke ${partitions.map((p) => p.partition)} ${reason}`);
      },
    });
    const iterator = consumer.records();
    let inHandOffset = -1;
    for (;;) {
      const { value } = await iterator.next();
      inHandOffset = value!.offset;
      if (value!.partition === 0 && value!.offset === 1) break; // 'a' finished, 'b' in hand.
    }
    script.generation = 2;
    script.assignments = [{ topic: 't', partition: 1 }];
    await until(() => events.length === 2);
    const rest: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { value } = await iterator.next();
      rest.push(`${value!.partition}:${value!.value}`);
    }
    expect(rest.every((label) => label.startsWith('1:'))).toBe(true);
    expect(events).toEqual(['assign 0,1', 'revoke 0 rebalance']);
    await until(() => commits.some((c) => c.offsets.some((o) => o.partition === 0)));
    const revokedCommit = commits.find((c) => c.offsets.some((o) => o.partition === 0))!;
    expect(revokedCommit).toMatchObject({ memberId: 'm-1', generation: 2 });
    // What was finished of partition 0: up to the record in hand (finished if the loop moved on first).
    expect([inHandOffset, inHandOffset + 1]).toContain(revokedCommit.offsets[0]!.offset);
    // The first heartbeat carrying generation 2 comes after that commit.
    const acknowledges = () =>
      heartbeats().filter((r) => (r.body as { generation: number }).generation === 2);
    await until(() => acknowledges().length > 0);
    const requests = node.requests as FakeRequest[];
    const put = requests.find((r) => r.method === 'PUT' && (r.body as Commit).generation === 2)!;
    const acknowledged = acknowledges()[0]!;
    expect(index(put, requests)).toBeLessThan(index(acknowledged, requests));
    expect(consumer.assignment()).toEqual([1]);
    await iterator.return?.();
    await consumer.close();
  });

  it('on STALE_GENERATION: learns the assignment, then commits only what it still owns', async () => {
    const { node, script, commits } = groupNode([
      ['a', 'b'],
      ['x', 'y'],
    ]);
    script.heartbeatIntervalMs = 60_000; // Only the refresh heartbeats.
    const consumer = node.client().consumer({ topic: 't', group: 'g', autoCommit: false });
    const iterator = consumer.records();
    const seen = new Set<number>();
    while (seen.size < 2) seen.add((await iterator.next()).value!.partition);
    await iterator.next(); // Both partitions have a finished record now.
    script.generation = 2;
    script.assignments = [{ topic: 't', partition: 1 }];
    script.staleCommits = 1; // The commit with generation 1 is refused.
    const committed = await consumer.commit();
    expect(committed.every((o) => o.partition === 1)).toBe(true);
    expect(commits.at(-1)).toMatchObject({ memberId: 'm-1', generation: 2 });
    expect(consumer.assignment()).toEqual([1]);
    await iterator.return?.();
    await consumer.close();
  });

  it('on UNKNOWN_MEMBER: drops every partition without committing, and joins again', async () => {
    const { node, script, commits } = groupNode([['a', 'b', 'c']]);
    const events: string[] = [];
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      onAssign: (partitions) => {
        events.push(`assign ${partitions.map((p) => p.partition)}`);
      },
      onRevoke: (partitions, reason) => {
        events.push(`revoke ${partitions.map((p) => p.partition)} ${reason}`);
      },
    });
    const iterator = consumer.records();
    await iterator.next();
    await iterator.next();
    script.unknownMember = true;
    await until(() => script.joins === 2);
    await until(() => events.length === 3);
    expect(events).toEqual(['assign 0', 'revoke 0 lost', 'assign 0']);
    expect(commits).toEqual([]); // The lost partition was not committed.
    const next = await iterator.next();
    expect(next.value!.value).toBe('a'); // Read again from the group's offset (none: earliest).
    await iterator.return?.();
    await consumer.close();
    expect(node.sent('DELETE', /members/).at(-1)!.path).toBe('/v1/groups/g/members/m-2');
  });

  it('close(): commits what was finished, calls onRevoke(close), leaves, and heartbeats no more', async () => {
    const { node, commits, heartbeats } = groupNode([['a', 'b', 'c']]);
    const events: string[] = [];
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      onRevoke: (partitions, reason) => {
        events.push(`revoke ${partitions.map((p) => p.partition)} ${reason}`);
      },
    });
    const controller = new AbortController();
    for await (const record of consumer.records({ signal: controller.signal })) {
      if (record.value === 'b') controller.abort(); // 'b' counts as finished.
    }
    await consumer.close();
    expect(commits.at(-1)).toEqual({
      offsets: [{ topic: 't', partition: 0, offset: 2 }],
      memberId: 'm-1',
      generation: 1,
    });
    expect(events).toEqual(['revoke 0 close']);
    const deletes = node.sent('DELETE', /members/);
    expect(deletes.map((r) => r.path)).toEqual(['/v1/groups/g/members/m-1']);
    const count = heartbeats().length;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(heartbeats().length).toBe(count);
  });

  it('refuses to seek a partition it does not own', async () => {
    const { node, script } = groupNode([['a'], ['b']]);
    script.assignments = [{ topic: 't', partition: 0 }];
    const consumer = node.client().consumer({ topic: 't', group: 'g' });
    const iterator = consumer.records();
    await iterator.next();
    expect(() => consumer.seek(1, 0)).toThrow(/not assigned/);
    await iterator.return?.();
    await consumer.close();
  });
});
