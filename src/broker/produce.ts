// Produce on the partition leader: one request's records for one partition become one batch
// entry, stamped with the next offsets and the leader's clock, proposed, and answered once
// applied. An idempotent request is first checked against the producer table plus the batches
// in the log not applied yet: a retry of a committed batch gets its original offsets, a retry of
// one still in flight waits for it, and nothing is appended twice. A leader whose uncommitted
// budget is full holds the request until there is room (backpressure.ts).

import { BrokerError, isBrokerError } from './errors.js';
import type { BrokerNode, LocalPartition } from './node.js';
import { encodeBatch, type ProducerInfo, type RecordInput } from './record-batch.js';

/** A record before the leader stamps it: a missing timestamp takes the leader's clock. */
export type ProduceInput = Omit<RecordInput, 'timestampMs'> & { timestampMs: number | null };

export interface ProduceLocalResult {
  baseOffset: number;
  recordCount: number;
  /** True when the producer sequence was already committed: nothing was appended. */
  duplicate: boolean;
}

/** How many times a retry waits for its in-flight original before giving up (bounds the loop). */
const PENDING_WAITS_MAX = 16;
/** Bound on the loop of a request waiting for room; its deadline ends it long before. */
const ROOM_WAITS_MAX = 1_000_000;

export async function produceLocal(
  node: BrokerNode,
  local: LocalPartition,
  records: readonly ProduceInput[],
  producer: ProducerInfo | null,
  timeoutMs: number,
): Promise<ProduceLocalResult> {
  const deadlineMs = Date.now() + timeoutMs;
  const recordCount = records.length;
  let pendingWaits = 0;
  for (let roomWaits = 0; roomWaits < ROOM_WAITS_MAX; roomWaits++) {
    const group = local.group;
    if (!group.isLeader) {
      throw new BrokerError(
        'NO_LEADER',
        `node ${node.nodeId} does not lead ${local.topic}/${local.partition}`,
      );
    }
    // Without a live link to a majority nothing can commit: say so now rather than at timeoutMs.
    const replicas = local.placement.replicas;
    const reachable = node.reachableReplicas(replicas);
    const quorum = Math.floor(replicas.length / 2) + 1;
    if (reachable < quorum) {
      throw new BrokerError(
        'NOT_ENOUGH_REPLICAS',
        `${local.topic}/${local.partition}: ${reachable} of ${replicas.length} replicas reachable, ` +
          `${quorum} needed to commit; retry shortly`,
      );
    }
    const nowMs = Date.now();
    if (producer) {
      const check = local.machine.checkProduce(producer, recordCount, nowMs);
      if (check.kind === 'refused') throw new BrokerError(check.code, check.message);
      if (check.kind === 'duplicate') return { baseOffset: check.baseOffset, recordCount, duplicate: true };
      if (check.kind === 'pending') {
        if (pendingWaits++ >= PENDING_WAITS_MAX) throw timeoutError(timeoutMs);
        // The same batch is in the log, not committed yet: its outcome is this request's.
        await waitUntilSettled(local, check.index, deadlineMs, timeoutMs);
        continue;
      }
    }
    // The node's bound on memory-topic data (memory-bound.ts): after the dedup check, so that a
    // retry of a committed batch still gets its offsets; before anything is appended.
    if (group.store.mode === 'memory') node.memoryTopics.checkRoom(local, records);
    // From the check to noteAppended nothing awaits, so no other batch can slip in between.
    const stamped: RecordInput[] = records.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestampMs: r.timestampMs ?? nowMs,
    }));
    const baseOffset = local.machine.logEndOffset();
    const data = encodeBatch(baseOffset, stamped, producer, nowMs);
    if (group.store.mode !== 'memory') {
      node.disk.checkProduce(group, data.length, `${local.topic}/${local.partition}`);
    }
    let index: number;
    try {
      index = node.propose(group, data);
    } catch (error) {
      if (!isBrokerError(error, 'THROTTLED')) throw error;
      // Nothing was appended: wait for room, then check and stamp again (offsets may have moved).
      await node.backpressure.waitForRoom(local.machine, {
        // A lost leadership ends the wait too: the loop then answers NO_LEADER.
        hasRoom: () => !group.isLeader || group.raw.hasRoomFor(data.length),
        batchBytes: data.length,
        deadlineMs,
        timeoutMs,
        partition: `${local.topic}/${local.partition}`,
      });
      continue;
    }
    const term = group.raw.term;
    local.machine.noteAppended(index, { baseOffset, recordCount, producer, appendTimeMs: nowMs });
    await group.waitForProposal(index, term, Math.max(1, deadlineMs - Date.now()));
    return { baseOffset, recordCount, duplicate: false };
  }
  throw timeoutError(timeoutMs);
}

function timeoutError(timeoutMs: number): BrokerError {
  return new BrokerError(
    'TIMEOUT',
    `not committed within ${timeoutMs} ms: the outcome is unknown; a retry with the same producer sequence is safe`,
  );
}

/**
 * Resolves once the entry at `index` is applied or gone from the local log (overwritten by a new
 * leader); rejects with TIMEOUT at the deadline, or NO_LEADER if the partition closes.
 */
function waitUntilSettled(
  local: LocalPartition,
  index: number,
  deadlineMs: number,
  timeoutMs: number,
): Promise<void> {
  const machine = local.machine;
  const settled = () => machine.appliedIndex >= index || !machine.isPending(index);
  if (settled()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const finish = (error: BrokerError | null) => {
      clearTimeout(timer);
      unsubscribe();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(timeoutError(timeoutMs)), Math.max(1, deadlineMs - Date.now()));
    const unsubscribe = machine.onHighWatermark(() => {
      if (machine.closed)
        finish(new BrokerError('NO_LEADER', `${local.topic}/${local.partition} closed; retry`));
      else if (settled() || !local.group.isLeader) finish(null);
    });
  });
}
