// Produce and fetch. Produce splits a request by partition (explicit, by key with Kafka's
// murmur2, or round-robin), proposes on the leader of each (here, or forwarded), and answers
// with offsets in the order of the records. Fetch answers from this node's replica when it has
// one, else from the partition's leader.

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import { fetchLocal } from '../../broker/fetch.js';
import type { TopicMeta } from '../../broker/metadata-state.js';
import type { BrokerNode } from '../../broker/node.js';
import { partitionForKey } from '../../broker/partitioner.js';
import { type ProduceInput, produceLocal } from '../../broker/produce.js';
import type { ProducerInfo } from '../../broker/record-batch.js';
import {
  DEFAULT_FETCH_LIMIT,
  DEFAULT_FETCH_MAX_BYTES,
  DEFAULT_PRODUCE_TIMEOUT_MS,
  type Encoding,
  type FetchResponse,
  type ProduceRecord,
  type ProduceRequest,
  type ProduceResponse,
} from '../../wire/types.js';
import type { ApiContext } from '../app.js';
import type { Forwarder } from '../forward.js';
import { FORWARD_HOPS_MAX } from '../forward.js';
import { decodeRecord, encodeRecord } from '../record-json.js';
import { forwardRequest, hopsOf, SERVED_BY_HEADER, topicMeta } from '../relay.js';
import {
  errorResponses,
  fetchQuerySchema,
  fetchResponseSchema,
  partitionParamsSchema,
  produceBodySchema,
  produceResponseSchema,
  SAFE_INTEGER_MAX,
  topicParamsSchema,
} from '../schemas.js';

interface PartitionShare {
  partition: number;
  /** Positions of this partition's records in the request. */
  positions: number[];
  records: ProduceInput[];
}

interface FetchQuery {
  offset?: string;
  limit?: number;
  maxBytes?: number;
  waitMs?: number;
  encoding?: Encoding;
  consistency?: 'local' | 'linearizable';
  minOffset?: number;
}

function checkPartition(topic: TopicMeta, partition: number): void {
  if (partition >= topic.partitions.length) {
    throw new BrokerError(
      'UNKNOWN_PARTITION',
      `topic '${topic.name}' has no partition ${partition} (it has ${topic.partitions.length})`,
    );
  }
}

function splitByPartition(broker: BrokerNode, topic: TopicMeta, body: ProduceRequest): PartitionShare[] {
  const encoding = body.encoding ?? 'utf8';
  const count = topic.partitions.length;
  const shares = new Map<number, PartitionShare>();
  body.records.forEach((wire, position) => {
    const record = decodeRecord(wire, encoding, position);
    let partition = wire.partition;
    if (partition === undefined) {
      partition = record.key ? partitionForKey(record.key, count) : broker.nextRoundRobin(topic.name, count);
    }
    checkPartition(topic, partition);
    let share = shares.get(partition);
    if (!share) {
      share = { partition, positions: [], records: [] };
      shares.set(partition, share);
    }
    share.positions.push(position);
    share.records.push(record);
  });
  return [...shares.values()];
}

interface ShareResult {
  baseOffset: number;
  /** The producer sequence was committed before: these are the original offsets. */
  duplicate: boolean;
  /** The node that appended the share (this one, or the leader it was forwarded to). */
  servedBy: number;
}

/** Produces one partition's share: here if this node leads it, else on its leader. */
async function produceShare(
  broker: BrokerNode,
  forwarder: Forwarder,
  topic: TopicMeta,
  share: PartitionShare,
  body: ProduceRequest,
  hops: number,
): Promise<ShareResult> {
  const placement = topic.partitions[share.partition]!;
  const producer: ProducerInfo | null = body.producer ?? null;
  const timeoutMs = body.timeoutMs ?? DEFAULT_PRODUCE_TIMEOUT_MS;
  const local = broker.localPartition(placement.groupId);
  if (local?.group.isLeader) {
    const result = await produceLocal(broker, local, share.records, producer, timeoutMs);
    return { baseOffset: result.baseOffset, duplicate: result.duplicate, servedBy: broker.nodeId };
  }
  const leader = broker.partitionStatus(placement.groupId)?.leader ?? 0;
  if (leader === 0 || leader === broker.nodeId || hops >= FORWARD_HOPS_MAX) {
    throw new BrokerError(
      'NO_LEADER',
      `${topic.name}/${share.partition} has no leader right now; retry shortly`,
    );
  }
  // Built only here: a copy of every record per request would be garbage on the leader's path.
  const records: ProduceRecord[] = share.positions.map((position) => ({
    ...body.records[position]!,
    partition: share.partition,
  }));
  const forwarded: ProduceRequest = { ...body, records };
  const response = await forwarder.forward(leader, {
    method: 'POST',
    url: `/v1/topics/${encodeURIComponent(topic.name)}/records`,
    body: JSON.stringify(forwarded),
    hops,
  });
  if (response.statusCode !== 200) throw relayedError(response.statusCode, response.body);
  const parsed = JSON.parse(response.body) as ProduceResponse;
  return { baseOffset: parsed.offsets[0]!.offset, duplicate: parsed.duplicate, servedBy: leader };
}

/** Turns another node's error answer back into a coded error, to answer with as our own. */
function relayedError(statusCode: number, body: string): BrokerError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    const code = parsed.error?.code;
    if (code) {
      const { code: _code, message, ...details } = parsed.error as Record<string, unknown>;
      return new BrokerError(code as BrokerError['code'], String(message ?? code), details);
    }
  } catch {
    // not JSON: fall through
  }
  return new BrokerError('INTERNAL', `the partition leader answered ${statusCode}`);
}

async function handleProduce(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string }; Body: ProduceRequest }>,
  reply: FastifyReply,
): Promise<ProduceResponse> {
  const { broker, forwarder } = context;
  const topic = await topicMeta(broker, request.params.topic);
  const shares = splitByPartition(broker, topic, request.body);
  if (request.body.producer && shares.length > 1) {
    throw new BrokerError(
      'INVALID_REQUEST',
      'producer: an idempotent request must write to one partition (its sequence is counted per partition)',
    );
  }
  const hops = hopsOf(request);
  const results = await Promise.all(
    shares.map((share) => produceShare(broker, forwarder, topic, share, request.body, hops)),
  );
  const offsets = new Array<{ partition: number; offset: number }>(request.body.records.length);
  shares.forEach((share, i) => {
    share.positions.forEach((position, k) => {
      offsets[position] = { partition: share.partition, offset: results[i]!.baseOffset + k };
    });
  });
  const servedBy = [...new Set(results.map((r) => r.servedBy))];
  if (servedBy.some((id) => id !== broker.nodeId)) reply.header(SERVED_BY_HEADER, servedBy.join(','));
  // Only an idempotent request (one partition, one share) can be a duplicate.
  return { offsets, duplicate: results.some((r) => r.duplicate) };
}

async function handleFetch(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string; partition: number }; Querystring: FetchQuery }>,
  reply: FastifyReply,
): Promise<FetchResponse | FastifyReply> {
  const { broker, forwarder } = context;
  const { topic: name, partition } = request.params;
  const topic = await topicMeta(broker, name);
  checkPartition(topic, partition);
  const placement = topic.partitions[partition]!;
  const local = broker.localPartition(placement.groupId);
  if (!local) {
    const leader = broker.partitionStatus(placement.groupId)?.leader ?? 0;
    const target = leader !== 0 ? leader : placement.replicas.find((id) => broker.isPeerAlive(id));
    if (target === undefined)
      throw new BrokerError('NO_LEADER', `no replica of ${name}/${partition} is reachable`);
    return forwardRequest(forwarder, request, reply, target);
  }
  const query = request.query;
  const abort = new AbortController();
  request.raw.once('close', () => abort.abort());
  const encoding = query.encoding ?? 'utf8';
  const result = await fetchLocal(
    local,
    {
      offset: parseOffset(query.offset),
      limit: query.limit ?? DEFAULT_FETCH_LIMIT,
      maxBytes: query.maxBytes ?? DEFAULT_FETCH_MAX_BYTES,
      waitMs: query.waitMs ?? 0,
      consistency: query.consistency ?? 'local',
      minOffset: query.minOffset,
    },
    () => broker.driver.markDirty(local.group),
    abort.signal,
  );
  return {
    records: result.records.map((r) => encodeRecord(r, encoding)),
    nextOffset: result.nextOffset,
    highWatermark: result.highWatermark,
    logStartOffset: result.logStartOffset,
  };
}

function parseOffset(value: string | undefined): number | 'earliest' | 'latest' | undefined {
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

export function recordRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { topic: string }; Body: ProduceRequest }>(
      '/v1/topics/:topic/records',
      {
        schema: {
          summary: 'Produce records; answers once every record is committed',
          params: topicParamsSchema,
          body: produceBodySchema,
          response: { 200: produceResponseSchema, ...errorResponses(400, 404, 409, 413, 503, 504) },
        },
      },
      (request, reply) => handleProduce(context, request, reply),
    );

    app.get<{ Params: { topic: string; partition: number }; Querystring: FetchQuery }>(
      '/v1/topics/:topic/partitions/:partition/records',
      {
        schema: {
          summary: "Fetch committed records from this node's replica",
          params: partitionParamsSchema,
          querystring: fetchQuerySchema,
          response: { 200: fetchResponseSchema, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleFetch(context, request, reply),
    );
  };
}
