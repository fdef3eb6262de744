// The contract's URL paths of a topic and of a partition, with the topic name escaped.

export function topicPath(topic: string): string {
  return `/v1/topics/${encodeURIComponent(topic)}`;
}

export function partitionPath(topic: string, partition: number): string {
  return `${topicPath(topic)}/partitions/${partition}`;
}
