// Produce on the partition leader: one request's records for one partition become one batch
// entry, stamped with the next offsets and the leader's clock, proposed, and answered once
// applied. An idempotent request is first checked against the producer table plus the batches
// in the log not applied yet: a retry of a committed batch gets its original offsets, a retry of
// one still in flight waits for it, and nothing is appended twice. A leader whose uncommitted
// budget is full holds the request until there is room (backpressure.ts).

import { quorumSize } from '../raft/index.js';
import { BrokerError, isBrokerError } from './errors.js';
import type { BrokerNode } from './node.js';
import type { LocalPartition } from './partitions.js';
import { encodeBatch, encodedBatchBytes, type ProducerInfo, type RecordInput } from './record-batch.js';

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
/** Bound on the loop of one request; its deadline ends it long before. */
const LOOPS_MAX = 1_000_000;

export async function produceLocal(
  node: BrokerNode,
  local: LocalPartition,
  records: readonly ProduceInput[],
  producer: ProducerInfo | null,
  timeoutMs: number,
): Promise<ProduceLocalResult> {
  const deadlineMs = Date.now() + timeoutMs;
  const recordCount = records.length;
  const groupId = local.group.groupId;
  const batchBytes = encodedBatchBytes(records, producer, true);
  const partition = () => `${local.topic}/${local.partition}`;
  let pendingWaits = 0;
  let woken = false;
  for (let loops = 0; loops < LOOPS_MAX; loops++) {
    // Woken from the backpressure queue: whatever this pass does, the next in line looks after.
    let viaQueue = woken;
    woken = false;
    const passQueue = () => {
      if (viaQueue) node.backpressure.passed(groupId);
      viaQueue = false;
    };
    try {
      const group = local.group;
      checkLeadership(node, local);
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
      // A full uncommitted budget: wait for room before anything is encoded or counted.
      if (!viaQueue && node.backpressure.mustWait(groupId, group.raw.hasRoomFor(batchBytes))) {
        await node.backpressure.waitForRoom(local.machine, groupId, {
          // A lost leadership ends the wait too: the next pass answers NO_LEADER.
          hasRoom: () => !group.isLeader || group.raw.hasRoomFor(batchBytes),
          batchBytes,
          deadlineMs,
          timeoutMs,
          partition,
        });
        woken = true;
        continue;
      }
      // The node's bounds on memory-topic data and on disk space: after the dedup check, so that
      // a retry of a committed batch still gets its offsets; before anything is appended.
      if (group.store.mode === 'memory') node.memoryTopics.checkRoom(local, records);
      else node.disk.checkProduce(group, batchBytes, partition());
      // From the check to noteAppended nothing awaits, so no other batch can slip in between.
      const stamped: RecordInput[] = records.map((r) => ({
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestampMs: r.timestampMs ?? nowMs,
      }));
      const baseOffset = local.machine.logEndOffset();
      const data = encodeBatch(baseOffset, stamped, producer, nowMs);
      let index: number;
      try {
        index = node.propose(group, data);
      } catch (error) {
        // Room taken between the wake and now (a newcomer found the queue empty): queue again.
        if (isBrokerError(error, 'THROTTLED')) continue;
        throw error;
      }
      const term = group.raw.term;
      local.machine.noteAppended(index, { baseOffset, recordCount, producer, appendTimeMs: nowMs });
      passQueue(); // proposed: its bytes count now, so the next one sees the room that is left
      await group.waitForProposal(index, term, Math.max(1, deadlineMs - Date.now()));
      return { baseOffset, recordCount, duplicate: false };
    } finally {
      passQueue(); // a refusal or a wait: the next in line looks now
    }
  }
  throw timeoutError(timeoutMs);
}

/** This node leads the partition, with a live link to a majority of its replicas. */
function checkLeadership(node: BrokerNode, local: LocalPartition): void {
  if (!local.group.isLeader) {
    throw new BrokerError('NO_LEADER', `node ${node.nodeId} does not lead ${local.topic}/${local.partition}`);
  }
  // Without a live link to a majority nothing can commit: say so now rather than at timeoutMs.
  const replicas = local.placement.replicas;
  const reachable = node.reachableReplicas(replicas);
  const quorum = quorumSize(replicas.length);
  if (reachable < quorum) {
    throw new BrokerError(
      'NOT_ENOUGH_REPLICAS',
      `${local.topic}/${local.partition}: ${reachable} of ${replicas.length} replicas reachable, ` +
        `${quorum} needed to commit; retry shortly`,
    );
  }
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
