// Produce on the partition leader: one request's records for one partition become one batch
// entry, stamped with the next offsets, proposed, and answered once applied.

import { BrokerError } from './errors.js';
import type { BrokerNode, LocalPartition } from './node.js';
import { encodeBatch, type ProducerInfo, type RecordInput } from './record-batch.js';

/** A record before the leader stamps it: a missing timestamp takes the leader's clock. */
export type ProduceInput = Omit<RecordInput, 'timestampMs'> & { timestampMs: number | null };

export interface ProduceLocalResult {
  baseOffset: number;
  recordCount: number;
}

export async function produceLocal(
  node: BrokerNode,
  local: LocalPartition,
  records: readonly ProduceInput[],
  producer: ProducerInfo | null,
  timeoutMs: number,
): Promise<ProduceLocalResult> {
  const group = local.group;
  if (!group.isLeader) {
    throw new BrokerError('NO_LEADER', `node ${node.nodeId} does not lead ${local.topic}/${local.partition}`);
  }
  const nowMs = Date.now();
  const stamped: RecordInput[] = records.map((r) => ({
    key: r.key,
    value: r.value,
    headers: r.headers,
    timestampMs: r.timestampMs ?? nowMs,
  }));
  const baseOffset = local.machine.logEndOffset();
  const data = encodeBatch(baseOffset, stamped, producer);
  const index = node.propose(group, data);
  const term = group.raw.term;
  local.machine.noteAppended(index, { baseOffset, recordCount: stamped.length });
  await group.waitForProposal(index, term, timeoutMs);
  return { baseOffset, recordCount: stamped.length };
}
