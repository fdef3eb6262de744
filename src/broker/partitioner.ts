// The broker's partition choice: keyed records use Kafka's murmur2 rule (shared with the SDK, so it
// lives in src/wire/partitioner.ts); keyless records go round-robin.

export { murmur2, partitionForKey } from '../wire/partitioner.js';

/** Spreads keyless records over the partitions in turn. */
export class RoundRobin {
  private next = 0;
  pick(partitions: number): number {
    const partition = this.next % partitions;
    this.next = (this.next + 1) % 0x7fffffff;
    return partition;
  }
}
