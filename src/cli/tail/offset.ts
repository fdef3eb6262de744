// Where `raftlog tail` starts in each partition (--offset): earliest, latest, an offset, N records
// before the end (-N), or the first record at or after a time (@TIMESTAMP). The first three are
// the same for every partition and the server resolves them; -N and @ are resolved here, per
// partition, into offsets before anything is read.

import { InvalidArgumentError } from 'commander';
import type { RaftlogClient, StartOffset } from '../../client/index.js';

export type OffsetSpec =
  | { kind: 'position'; position: StartOffset }
  | { kind: 'fromEnd'; records: number }
  | { kind: 'time'; timestampMs: number };

/** Offsets for a time are asked this many partitions at a time. */
const TIME_LOOKUPS_IN_FLIGHT_MAX = 8;

/** Parses --offset: `earliest`, `latest`, `N`, `-N`, `@MS` or `@ISO-8601`. */
export function offsetSpec(value: string): OffsetSpec {
  const text = value.trim();
  if (text === 'earliest' || text === 'latest') return { kind: 'position', position: text };
  if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) {
    return { kind: 'position', position: Number(text) };
  }
  if (/^-\d+$/.test(text) && Number.isSafeInteger(-Number(text))) {
    return { kind: 'fromEnd', records: -Number(text) };
  }
  if (text.startsWith('@')) {
    const time = text.slice(1);
    const timestampMs = /^\d+$/.test(time) ? Number(time) : Date.parse(time);
    if (Number.isSafeInteger(timestampMs) && timestampMs >= 0) return { kind: 'time', timestampMs };
  }
  throw new InvalidArgumentError(
    'expected earliest, latest or an offset: N, -N (N before the end) or @TIMESTAMP (ms since the epoch, or ISO 8601)',
  );
}

/** The same start for every partition, when the spec is one (the server resolves it). */
export function uniformStart(spec: OffsetSpec): StartOffset | undefined {
  return spec.kind === 'position' ? spec.position : undefined;
}

/**
 * Per partition, the offset a -N or @TIMESTAMP spec means now. -N is clamped to the log start
 * (fewer than N records retained: all of them); @ gives the high watermark when no record is that
 * late (nothing printed until one is).
 */
export async function resolveStarts(
  client: RaftlogClient,
  options: { topic: string; partitions: number[] | undefined; spec: OffsetSpec; signal: AbortSignal },
): Promise<Map<number, number>> {
  const { topic, spec, signal } = options;
  const starts = new Map<number, number>();
  if (spec.kind === 'position') return starts;
  const description = await client.describeTopic(topic, { signal });
  const partitions = options.partitions ?? description.partitions.map((p) => p.partition);
  if (spec.kind === 'fromEnd') {
    for (const partition of partitions) {
      const known = description.partitions.find((p) => p.partition === partition);
      // A partition the topic does not have: the read reports UNKNOWN_PARTITION.
      if (!known) continue;
      starts.set(partition, Math.max(known.logStartOffset, known.highWatermark - spec.records));
    }
    return starts;
  }
  for (let i = 0; i < partitions.length; i += TIME_LOOKUPS_IN_FLIGHT_MAX) {
    const chunk = partitions.slice(i, i + TIME_LOOKUPS_IN_FLIGHT_MAX);
    const answers = await Promise.all(
      chunk.map((partition) => client.offsetForTime(topic, partition, spec.timestampMs, { signal })),
    );
    for (const [index, partition] of chunk.entries()) starts.set(partition, answers[index]!.offset);
  }
  return starts;
}

/** `0,1,3`: partitions, each an integer >= 0, without duplicates. */
export function partitionList(value: string): number[] {
  const partitions: number[] = [];
  for (const entry of value.split(',')) {
    const text = entry.trim();
    const partition = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(partition) || partition > 2 ** 31 - 1) {
      throw new InvalidArgumentError(`'${entry}' is not a partition (an integer >= 0); expected e.g. 0,1`);
    }
    if (!partitions.includes(partition)) partitions.push(partition);
  }
  return partitions;
}
