// What routes read from a request's path and query, checked against this node's metadata: the
// topic (catching up with the metadata leader first if it is unknown here), the partition and
// the offset to start at.

import { BrokerError } from '../broker/errors.js';
import type { Broker, OffsetSpec, PartitionPlacement, TopicMeta } from '../broker/facade.js';
import { SAFE_INTEGER_MAX } from './schemas.js';

/** How long a node waits to learn metadata another node may just have written. */
export const METADATA_SYNC_TIMEOUT_MS = 5000;

/** The topic's metadata; if unknown here, first catch up with the metadata leader, then decide. */
export async function topicMeta(broker: Broker, name: string): Promise<TopicMeta> {
  const known = broker.findTopic(name);
  if (known) return known;
  await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
  return broker.topic(name);
}

/** The placement of the topic's partition; UNKNOWN_PARTITION if it has no such partition. */
export function placementOf(topic: TopicMeta, partition: number): PartitionPlacement {
  const placement = topic.partitions[partition];
  if (placement === undefined) {
    throw new BrokerError(
      'UNKNOWN_PARTITION',
      `topic '${topic.name}' has no partition ${partition} (it has ${topic.partitions.length})`,
    );
  }
  return placement;
}

/** The `offset` query parameter (already matched against OFFSET_QUERY_PATTERN); undefined if absent. */
export function parseOffset(value: string | undefined): OffsetSpec | undefined {
  if (value === undefined || value === 'earliest' || value === 'latest') return value;
  const offset = Number(value);
  // The pattern has let through canonical decimal of at most 16 digits; some exceed 2^53 - 1.
  if (!Number.isSafeInteger(offset))
    throw new BrokerError(
      'INVALID_REQUEST',
      `querystring/offset must be at most ${SAFE_INTEGER_MAX}, not ${value}`,
    );
  return offset;
}
