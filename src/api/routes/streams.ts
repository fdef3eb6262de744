// Record streams: a partition's (or every partition's) committed records pushed as they commit,
// as NDJSON or Server-Sent Events, until the client disconnects. A partition with a replica on
// this node is served from its local copy; one without is relayed from a node that holds one.

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Agent, request as undiciRequest } from 'undici';
import { BrokerError } from '../../broker/errors.js';
import { resolveOffset } from '../../broker/fetch.js';
import type { TopicMeta } from '../../broker/metadata-state.js';
import type { BrokerNode, LocalPartition } from '../../broker/node.js';
import type { PartitionMachine } from '../../broker/partition-machine.js';
import { DEFAULT_TAIL_LIMITS, tailCommitted } from '../../broker/stream.js';
import { splitLines } from '../../wire/lines.js';
import { type Encoding, MAX_REQUEST_BYTES, NDJSON_CONTENT_TYPE } from '../../wire/types.js';
import type { ApiContext } from '../app.js';
import { FORWARD_HOPS_MAX, FORWARDED_HEADER } from '../forward.js';
import { hopsOf, topicMeta } from '../relay.js';
import {
  errorResponses,
  OFFSET_QUERY_PATTERN,
  partitionParamsSchema,
  SAFE_INTEGER_MAX,
  topicParamsSchema,
} from '../schemas.js';
import { formatOf, StreamWriter } from '../stream-writer.js';

interface StreamQuery {
  offset?: string;
  encoding?: Encoding;
}

type StreamOffset = number | 'earliest' | 'latest';

export const streamQuerySchema = {
  type: 'object',
  properties: {
    offset: { type: 'string', pattern: OFFSET_QUERY_PATTERN },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
  },
  additionalProperties: false,
} as const;

/** How long to wait for a replica on another node to start a relayed stream. */
const RELAY_HEADERS_TIMEOUT_MS = 10_000;

/** Where one partition's records come from: this node's replica, or a relay from another's. */
type Source =
  | { kind: 'local'; partition: number; local: LocalPartition; offset: number }
  | { kind: 'relay'; partition: number; body: AsyncIterable<Uint8Array> & { destroy(): void } };

class StreamRegistry {
  readonly open = new Set<StreamWriter>();
  readonly agent = new Agent({ connections: 64 });
}

function parseOffset(value: string | undefined): StreamOffset {
  if (value === undefined || value === 'latest') return 'latest';
  if (value === 'earliest') return value;
  const offset = Number(value);
  // The pattern has let through canonical decimal of at most 16 digits; some exceed 2^53 - 1.
  if (!Number.isSafeInteger(offset))
    throw new BrokerError(
      'INVALID_REQUEST',
      `querystring/offset must be at most ${SAFE_INTEGER_MAX}, not ${value}`,
    );
  return offset;
}

/**
 * Where a local stream starts. Unlike fetch, an offset past this replica's high watermark is
 * not an error: the stream waits for it (a replica may lag the one the client read before).
 */
function streamStart(machine: PartitionMachine, offset: StreamOffset): number {
  if (typeof offset === 'number' && offset > machine.highWatermark) return offset;
  return resolveOffset(machine, offset);
}

function checkPartition(topic: TopicMeta, partition: number): void {
  if (partition >= topic.partitions.length) {
    throw new BrokerError(
      'UNKNOWN_PARTITION',
      `topic '${topic.name}' has no partition ${partition} (it has ${topic.partitions.length})`,
    );
  }
}

/** Turns another node's error answer into a coded error, to answer with as our own. */
async function relayedError(statusCode: number, body: { text(): Promise<string> }): Promise<BrokerError> {
  try {
    const parsed = JSON.parse(await body.text()) as { error?: Record<string, unknown> };
    if (parsed.error && typeof parsed.error.code === 'string') {
      const { code, message, ...details } = parsed.error;
      return new BrokerError(code as BrokerError['code'], String(message ?? code), details);
    }
  } catch {
    // not JSON: fall through
  }
  return new BrokerError('INTERNAL', `the replica answered ${statusCode}`);
}

/** Opens the partition's stream on a node that holds a replica (this node holds none). */
async function openRelay(
  broker: BrokerNode,
  registry: StreamRegistry,
  request: FastifyRequest<{ Querystring: StreamQuery }>,
  topic: TopicMeta,
  partition: number,
): Promise<Source> {
  const placement = topic.partitions[partition]!;
  const hops = hopsOf(request);
  const leader = broker.partitionStatus(placement.groupId)?.leader ?? 0;
  const alive = placement.replicas.filter((id) => id !== broker.nodeId && broker.isPeerAlive(id));
  const target = alive.includes(leader) ? leader : alive[0];
  const url = target === undefined ? undefined : broker.peers.get(target);
  if (url === undefined || hops >= FORWARD_HOPS_MAX)
    throw new BrokerError('NO_LEADER', `no replica of ${topic.name}/${partition} is reachable`);
  const query = new URLSearchParams();
  if (request.query.offset !== undefined) query.set('offset', request.query.offset);
  if (request.query.encoding !== undefined) query.set('encoding', request.query.encoding);
  const path = `/v1/topics/${encodeURIComponent(topic.name)}/partitions/${partition}/stream?${query}`;
  try {
    const response = await undiciRequest(new URL(path, url), {
      dispatcher: registry.agent,
      headers: { accept: NDJSON_CONTENT_TYPE, [FORWARDED_HEADER]: String(hops + 1) },
      headersTimeout: RELAY_HEADERS_TIMEOUT_MS,
      bodyTimeout: 0,
    });
    if (response.statusCode !== 200) throw await relayedError(response.statusCode, response.body);
    return { kind: 'relay', partition, body: response.body };
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    throw new BrokerError('NO_LEADER', `node ${target} is unreachable: ${(error as Error).message}`);
  }
}

/** Resolves every partition's start before anything is sent: errors answer as plain errors. */
async function openSources(
  context: ApiContext,
  registry: StreamRegistry,
  request: FastifyRequest<{ Querystring: StreamQuery }>,
  topic: TopicMeta,
  partitions: number[],
): Promise<Source[]> {
  const offset = parseOffset(request.query.offset);
  const sources: Source[] = [];
  try {
    for (const partition of partitions) {
      const local = context.broker.localPartition(topic.partitions[partition]!.groupId);
      if (local) {
        sources.push({ kind: 'local', partition, local, offset: streamStart(local.machine, offset) });
      } else {
        sources.push(await openRelay(context.broker, registry, request, topic, partition));
      }
    }
  } catch (error) {
    for (const source of sources) if (source.kind === 'relay') source.body.destroy();
    throw error;
  }
  return sources;
}

/** Pumps one source into the writer, pausing while the socket is full. */
async function pump(source: Source, writer: StreamWriter): Promise<void> {
  if (source.kind === 'local') {
    const chunks = tailCommitted(source.local, source.offset, DEFAULT_TAIL_LIMITS, writer.signal);
    for await (const records of chunks) {
      if (!writer.writeRecords(records, source.partition)) await writer.drained();
      if (writer.closed) return;
    }
    return;
  }
  const stopRelay = () => source.body.destroy();
  writer.signal.addEventListener('abort', stopRelay, { once: true });
  try {
    for await (const line of splitLines(source.body, MAX_REQUEST_BYTES)) {
      if (line === '') continue;
      if (!writer.writeJsonLine(line)) await writer.drained();
      if (writer.closed) return;
    }
  } catch (error) {
    if (!writer.closed) throw error;
  } finally {
    writer.signal.removeEventListener('abort', stopRelay);
  }
}

async function handleStream(
  context: ApiContext,
  registry: StreamRegistry,
  request: FastifyRequest<{ Params: { topic: string; partition?: number }; Querystring: StreamQuery }>,
  reply: FastifyReply,
): Promise<void> {
  const topic = await topicMeta(context.broker, request.params.topic);
  const { partition } = request.params;
  if (partition !== undefined) checkPartition(topic, partition);
  const partitions = partition !== undefined ? [partition] : topic.partitions.map((_, i) => i);
  const sources = await openSources(context, registry, request, topic, partitions);
  const writer = new StreamWriter(
    reply.raw,
    formatOf(request.headers.accept),
    request.query.encoding ?? 'utf8',
  );
  reply.hijack();
  registry.open.add(writer);
  writer.open(context.broker.nodeId);
  const pumps = sources.map((source) => pump(source, writer));
  // The others stop on their own once the writer closes; their late failures mean nothing.
  for (const pumping of pumps) pumping.catch(() => undefined);
  try {
    // One source ending (its replica's group closed, retention passed it, a relay broke) ends
    // the stream: the reader reconnects from its offsets rather than silently missing a partition.
    await Promise.race(pumps);
    writer.end();
  } catch (error) {
    if (!writer.closed) request.log.warn({ err: error }, 'stream failed');
    // Headers are gone: cutting the connection is how the reader learns the stream broke.
    reply.raw.destroy();
  } finally {
    registry.open.delete(writer);
  }
}

export function streamRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const registry = new StreamRegistry();
    // Open streams would keep the server's close waiting forever: end them first.
    app.addHook('preClose', (done) => {
      for (const writer of registry.open) writer.endForShutdown();
      registry.open.clear();
      done();
    });
    app.addHook('onClose', async () => {
      await registry.agent.destroy();
    });
    const response = { 200: { description: 'application/x-ndjson or text/event-stream' } };

    app.get<{ Params: { topic: string; partition: number }; Querystring: StreamQuery }>(
      '/v1/topics/:topic/partitions/:partition/stream',
      {
        schema: {
          summary:
            "Stream a partition's records as they commit (NDJSON, or SSE with accept: text/event-stream)",
          params: partitionParamsSchema,
          querystring: streamQuerySchema,
          response: { ...response, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleStream(context, registry, request, reply),
    );

    app.get<{ Params: { topic: string }; Querystring: StreamQuery }>(
      '/v1/topics/:topic/stream',
      {
        schema: {
          summary: "Stream every partition's records as they commit, merged (NDJSON or SSE)",
          params: topicParamsSchema,
          querystring: streamQuerySchema,
          response: { ...response, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleStream(context, registry, request, reply),
    );
  };
}
