// `raftlog tail --follow` without a group. It first learns the cluster's nodes from the first
// node that answers, then follows over the stream route of that node while the start is the same
// for every partition. When that node dies (or ends the stream), tail says so in one line and goes
// on by long-poll fetch through the SDK consumer, which moves between replicas by itself, from the
// next offset of each partition it has not printed: no gap, no repeat.
//
//   learn nodes ──▶ stream from one node ──broke / ended──▶ fetch from any replica (until Ctrl-C)
//        │              │ 404 (no stream routes): silently ──────────▲
//        └── -N or @: per-partition starts, which one stream cannot take ┘

import {
  type RaftlogClient,
  RaftlogError,
  RaftlogNetworkError,
  type StartOffset,
} from '../../client/index.js';
import type { CliIo } from '../io.js';
import { resolveStarts, uniformStart } from './offset.js';
import type { TailPlan } from './plan.js';
import { fromConsumed, fromStreamed, type Sink } from './sink.js';

/** Long-poll of each fetch when following by fetch. */
export const FOLLOW_WAIT_MS = 5_000;

export async function follow(client: RaftlogClient, plan: TailPlan, sink: Sink, io: CliIo): Promise<void> {
  await learnNodes(client, plan.signal);
  const uniform = uniformStart(plan.spec);
  // Next offset to print per partition; absent: the partition's start.
  const positions = await resolveStarts(client, plan);
  if (uniform !== undefined) {
    // With 'latest', know where each partition was, so that a switch to fetch cannot skip records
    // committed meanwhile in a partition the stream had shown nothing of yet.
    const restarts = uniform === 'latest' ? await latestOffsets(client, plan) : new Map<number, number>();
    const note = await followStream(client, plan, uniform, positions, sink);
    if (note === undefined || sink.full) return;
    if (note !== '') {
      io.stderr.write(`raftlog: ${note}\n`);
      for (const [partition, offset] of restarts)
        if (!positions.has(partition)) positions.set(partition, offset);
    }
  }
  await followByFetch(client, plan, uniform ?? 'earliest', positions, sink);
}

/**
 * Asks any node for the cluster, so that the client knows every node and not just --server's.
 * An answer without it (an older node: 404) leaves the bootstrap URLs, which still work; no
 * listed node answering at all is the command's error.
 */
async function learnNodes(client: RaftlogClient, signal: AbortSignal): Promise<void> {
  try {
    await client.cluster({ signal });
  } catch (error) {
    signal.throwIfAborted();
    if (error instanceof RaftlogError && error.code === 'NETWORK_ERROR') throw error;
  }
}

async function latestOffsets(client: RaftlogClient, plan: TailPlan): Promise<Map<number, number>> {
  const description = await client.describeTopic(plan.topic, { signal: plan.signal });
  const offsets = new Map<number, number>();
  for (const p of description.partitions) {
    if (plan.partitions === undefined || plan.partitions.includes(p.partition))
      offsets.set(p.partition, p.highWatermark);
  }
  return offsets;
}

/**
 * Prints the stream until it ends or breaks. Resolves with undefined when done (--count reached),
 * '' when the node has no stream routes (404), else what happened, for the one line on stderr.
 */
async function followStream(
  client: RaftlogClient,
  plan: TailPlan,
  start: StartOffset,
  positions: Map<number, number>,
  sink: Sink,
): Promise<string | undefined> {
  const { topic, partitions, signal } = plan;
  const only = partitions?.length === 1 ? partitions[0] : undefined;
  let opened = false;
  try {
    const stream = await client.openStream(topic, only, { offset: start, encoding: 'base64' }, { signal });
    opened = true;
    for await (const streamed of stream) {
      // Several --partition: the topic's stream carries them all; the others are skipped.
      if (partitions !== undefined && !partitions.includes(streamed.partition)) continue;
      positions.set(streamed.partition, streamed.offset + 1);
      if (!sink.print(fromStreamed(topic, streamed))) return undefined;
    }
    signal.throwIfAborted();
    return 'the stream ended; following by fetch';
  } catch (error) {
    signal.throwIfAborted();
    // A node without the stream routes answers 404 NOT_FOUND (UNKNOWN_TOPIC is a real error).
    if (!opened && error instanceof RaftlogError && error.code === 'NOT_FOUND') return '';
    if (opened && error instanceof RaftlogNetworkError) {
      return `lost ${error.url} (${error.failure}); following by fetch from the other nodes`;
    }
    throw error;
  }
}

async function followByFetch(
  client: RaftlogClient,
  plan: TailPlan,
  from: StartOffset,
  positions: Map<number, number>,
  sink: Sink,
): Promise<void> {
  const consumer = client.consumer({
    topic: plan.topic,
    partitions: plan.partitions,
    from,
    waitMs: FOLLOW_WAIT_MS,
    binary: true,
  });
  try {
    for (const [partition, offset] of positions) consumer.seek(partition, offset);
    for await (const record of consumer.records({ follow: true, signal: plan.signal })) {
      if (!sink.print(fromConsumed(record))) break;
    }
  } finally {
    await consumer.close();
  }
}
