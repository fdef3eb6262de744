// The two rules of the at-least-once promise, against a scripted group coordinator:
// 1. a commit never passes what the application finished (for any interleaving of reads, loop
//    exits and commits: a property over random schedules);
// 2. a revoked partition is committed before it is let go (the heartbeat that lets it go comes
//    after the commit), also when the application commits itself in onRevoke (autoCommit: false),
//    and close() commits what onRevoke finished.

import fc from 'fast-check';
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

/** A node with `lengths[p]` records per partition, fetched `perFetch` at a time, and a coordinator. */
function groupNode(lengths: number[], perFetch = 3) {
  const node = new FakeNode();
  nodes.push(node);
  const script = {
    generation: 1,
    assignments: lengths.map((_, partition) => ({ topic: 't', partition })) as Assignment[],
    heartbeatIntervalMs: 20,
    /** Heartbeats answer 503 NO_LEADER (a metadata leader change) while true. */
    down: false,
    joins: 0,
  };
  const commits: Commit[] = [];
  const answer = (memberId: string) => ({
    memberId,
    generation: script.generation,
    heartbeatIntervalMs: script.heartbeatIntervalMs,
    assignments: script.assignments,
  });
  node.on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', lengths.length) }));
  node.on('GET', /^\/v1\/topics\/t\/partitions\/(\d+)\/records$/, (request, match) => {
    const length = lengths[Number(match[1])]!;
    const raw = request.query.offset ?? 'earliest';
    const offset = raw === 'earliest' ? 0 : raw === 'latest' ? length : Number(raw);
    const count = Math.max(0, Math.min(perFetch, length - offset));
    const records = Array.from({ length: count }, (_, i) => ({
      offset: offset + i,
      value: `v${offset + i}`,
      timestamp: 0,
    }));
    return {
      status: 200,
      body: { records, nextOffset: offset + count, highWatermark: length, logStartOffset: 0 },
    };
  });
  node.on('POST', /^\/v1\/groups\/g\/members$/, () => {
    script.joins++;
    return { status: 200, body: answer(`m-${script.joins}`) };
  });
  node.on('POST', /^\/v1\/groups\/g\/members\/([^/]+)\/heartbeat$/, (_request, match) =>
    script.down
      ? errorReply(503, 'NO_LEADER', 'no metadata leader right now')
      : { status: 200, body: answer(match[1]!) },
  );
  node.on('DELETE', /^\/v1\/groups\/g\/members\/([^/]+)$/, () => ({ status: 204 }));
  node.on('PUT', /^\/v1\/groups\/g\/offsets$/, (request) => {
    commits.push(request.body as Commit);
    return { status: 204 };
  });
  return { node, script, commits };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

type Step = 'next' | 'commit' | 'break' | 'abort';

describe('a commit never passes what the application finished', () => {
  it('holds for random schedules of reads, loop exits (break, signal) and commits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Step>('next', 'next', 'next', 'commit', 'break', 'abort'), {
          minLength: 5,
          maxLength: 40,
        }),
        async (steps) => {
          const lengths = [7, 5];
          const { node, commits } = groupNode(lengths);
          const consumer = node.client().consumer({ topic: 't', group: 'g', autoCommit: false });
          // What the application finished, by its own account: the record it held when it asked
          // for the next one, or when its loop ended by the signal.
          const finished = lengths.map(() => 0);
          let controller = new AbortController();
          let iterator = consumer.records({ signal: controller.signal, follow: false });
          let inHand: { partition: number; offset: number } | undefined;
          const finish = () => {
            if (inHand) finished[inHand.partition] = Math.max(finished[inHand.partition]!, inHand.offset + 1);
            inHand = undefined;
          };
          const check = () => {
            for (const commit of commits) {
              for (const { partition, offset } of commit.offsets)
                expect(offset).toBeLessThanOrEqual(finished[partition]!);
            }
          };
          for (const step of steps) {
            if (step === 'next') {
              finish(); // Asking for the next one finishes the record in hand.
              const { done, value } = await iterator.next();
              if (!done) inHand = value;
            } else if (step === 'commit') {
              await consumer.commit();
              check();
            } else if (step === 'break') {
              await iterator.return?.(); // The record in hand is not finished: given again.
              inHand = undefined;
              controller = new AbortController();
              iterator = consumer.records({ signal: controller.signal, follow: false });
            } else {
              controller.abort(); // Ends at the next call; the record in hand counts as finished.
              await iterator.next();
              finish();
              controller = new AbortController();
              iterator = consumer.records({ signal: controller.signal, follow: false });
            }
          }
          await consumer.commit();
          check();
          await iterator.return?.();
          await consumer.close();
          nodes.splice(nodes.indexOf(node), 1);
          await node.close();
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('a revoked partition is committed before it is let go', () => {
  it('commit() inside onRevoke (autoCommit: false) covers the revoked partition, before the heartbeat that lets it go', async () => {
    const { node, script, commits } = groupNode([4, 20]);
    const events: string[] = [];
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      autoCommit: false,
      onRevoke: async (partitions, reason) => {
        events.push(`revoke ${partitions.map((p) => p.partition)} ${reason}`);
        const committed = await consumer.commit();
        events.push(`committed ${committed.map((o) => `${o.partition}@${o.offset}`)}`);
      },
    });
    const iterator = consumer.records();
    let held = -1;
    for (;;) {
      const { value } = await iterator.next();
      if (value!.partition === 0 && value!.offset === 1) {
        held = value!.offset; // Offset 0 finished, 1 in hand.
        break;
      }
    }
    script.generation = 2;
    script.assignments = [{ topic: 't', partition: 1 }];
    await until(() => events.length === 2);
    expect(events[0]).toBe('revoke 0 rebalance');
    expect(events[1]).toMatch(/[ ,]0@1(,|$)/); // Up to the record in hand, not past it.
    expect(held).toBe(1);
    const requests = node.requests as FakeRequest[];
    const put = requests.findIndex(
      (r) => r.method === 'PUT' && (r.body as Commit).offsets.some((o) => o.partition === 0),
    );
    await until(() =>
      requests.some(
        (r) => r.path.endsWith('/heartbeat') && (r.body as { generation: number }).generation === 2,
      ),
    );
    const letGo = requests.findIndex(
      (r) => r.path.endsWith('/heartbeat') && (r.body as { generation: number }).generation === 2,
    );
    expect(put).toBeGreaterThanOrEqual(0);
    expect(put).toBeLessThan(letGo);
    expect(commits.find((c) => c.offsets.some((o) => o.partition === 0))).toMatchObject({ memberId: 'm-1' });
    expect(consumer.groupMember()).toEqual({ memberId: 'm-1', generation: 2 });
    expect(consumer.assignment()).toEqual([1]);
    await iterator.return?.();
    await consumer.close();
  });

  it('close(): onRevoke(close) runs before the commit, so a record it finishes (markDone) is committed', async () => {
    const { node, commits } = groupNode([5]);
    const consumer = node.client().consumer({
      topic: 't',
      group: 'g',
      onRevoke: (_partitions, reason) => {
        if (reason === 'close') consumer.markDone({ partition: 0, offset: 1 });
      },
    });
    const iterator = consumer.records();
    await iterator.next(); // 0 in hand
    await iterator.next(); // 0 finished, 1 in hand: close() drops it unless onRevoke finishes it.
    await consumer.close();
    expect(commits.at(-1)).toEqual({
      offsets: [{ topic: 't', partition: 0, offset: 2 }],
      memberId: 'm-1',
      generation: 1,
    });
  });
});

describe('a member whose heartbeats go unanswered for a whole session', () => {
  it('delivers nothing more but keeps its member id; the next answer resumes it without a new join', async () => {
    const { node, script } = groupNode([30]);
    const consumer = node.client().consumer({ topic: 't', group: 'g', sessionTimeoutMs: 1000 });
    const iterator = consumer.records();
    expect((await iterator.next()).value!.offset).toBe(0);
    const downSinceMs = Date.now();
    script.down = true;
    // Lapsed: a heartbeat was sent after the session had run out unanswered.
    await until(() => node.sent('POST', /heartbeat$/).length > 0 && Date.now() - downSinceMs > 1300, 10_000);
    let delivered = false;
    const next = iterator.next().then((result) => {
      delivered = true;
      return result;
    });
    // Buffered records are there (3 per fetch), yet none is given while the membership is in doubt.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(delivered).toBe(false);
    expect(consumer.groupMember()?.memberId).toBe('m-1');
    script.down = false;
    expect((await next).value!.offset).toBe(1);
    expect(script.joins).toBe(1); // The same member: never expired, nothing moved.
    expect(consumer.assignment()).toEqual([0]);
    await iterator.return?.();
    await consumer.close();
  });
});
