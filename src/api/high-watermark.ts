// The rule that a consumer group may not commit an offset past a partition's high watermark (it
// would make the group skip records not written yet; Kafka accepts such a commit, raftlog does
// not), and how the node that proposes the commit learns the high watermark.
//
// A high watermark only grows (per partition group; a group id is never reused), and every
// value this node knows without asking (its own replica's, or the leader's latest announcement)
// is one that was true at some point, so it is at most the current one. An offset at or below it
// is therefore fine for good. An offset above it may still be fine (the value here may lag), so
// only then is the partition asked for its high watermark with a linearizable read (ReadIndex):
// that value is at least any high watermark a consumer could have been shown before its commit
// arrived, since the records below it were committed by then. A refusal therefore never hits
// an offset the consumer legitimately reached. Below the log start offset is fine: the consumer
// resets by its own policy when it fetches.

import { BrokerError } from '../broker/errors.js';
import type { CommittedOffset, FetchResult, PartitionPlacement } from '../broker/facade.js';
import type { ApiContext } from './context.js';
import { ask, liveReplicaOf } from './forward.js';

interface Bounds {
  highWatermark: number;
  logStartOffset: number;
}

/**
 * Throws 416 OFFSET_OUT_OF_RANGE (naming the entry, with the partition's logStartOffset and
 * highWatermark) if any offset is past its partition's high watermark. Topics and partitions
 * must exist (checked before).
 */
export async function checkBelowHighWatermarks(
  context: ApiContext,
  offsets: readonly CommittedOffset[],
  hops: number,
): Promise<void> {
  const { broker } = context;
  // Per partition, the largest offset that is above what this node knows: one question each.
  const unsure = new Map<number, { index: number; entry: CommittedOffset; placement: PartitionPlacement }>();
  offsets.forEach((entry, index) => {
    const placement = broker.partition(entry.topic, entry.partition);
    const known = broker.partitionStatus(placement.groupId)?.highWatermark ?? 0;
    if (entry.offset <= known) return;
    const seen = unsure.get(placement.groupId);
    if (!seen || seen.entry.offset < entry.offset) unsure.set(placement.groupId, { index, entry, placement });
  });
  await Promise.all(
    [...unsure.values()].map(async ({ index, entry, placement }) => {
      const bounds = await confirmedBounds(context, entry, placement, hops);
      if (entry.offset <= bounds.highWatermark) return;
      throw new BrokerError(
        'OFFSET_OUT_OF_RANGE',
        `body/offsets/${index}/offset ${entry.offset} is past the high watermark of ${entry.topic}/${entry.partition} ` +
          `(${bounds.highWatermark}): a group may not commit offsets of records not written yet`,
        { topic: entry.topic, partition: entry.partition, ...bounds },
      );
    }),
  );
}

/** The partition's bounds after a linearizable read, on this node's replica or another's. */
async function confirmedBounds(
  context: ApiContext,
  entry: CommittedOffset,
  placement: PartitionPlacement,
  hops: number,
): Promise<Bounds> {
  const { broker } = context;
  if (broker.hasReplica(placement.groupId)) {
    const result = await broker.fetch(placement.groupId, {
      offset: 'latest',
      limit: 1,
      maxBytes: 1,
      waitMs: 0,
      consistency: 'linearizable',
      minOffset: undefined,
    });
    return { highWatermark: result.highWatermark, logStartOffset: result.logStartOffset };
  }
  const target = liveReplicaOf(broker, placement, `${entry.topic}/${entry.partition}`);
  const path = `/v1/topics/${encodeURIComponent(entry.topic)}/partitions/${entry.partition}/records`;
  // The replica's own refusal (NO_LEADER while it has no quorum, say) is the answer.
  const answer = await ask<Partial<FetchResult>>(context, target, {
    method: 'GET',
    url: `${path}?offset=latest&limit=1&maxBytes=1&waitMs=0&consistency=linearizable`,
    hops,
  });
  if (typeof answer.highWatermark !== 'number') {
    throw new BrokerError('INTERNAL', `node ${target} answered a fetch without a high watermark`);
  }
  return { highWatermark: answer.highWatermark, logStartOffset: answer.logStartOffset ?? 0 };
}
