// JSON schemas of the routes: they validate input, serialize output (fast-json-stringify), and
// generate the OpenAPI document. Shapes follow ../shared/API.md and src/wire/types.ts.

import { FETCH_LIMIT_MAX } from '../wire/types.js';

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
      additionalProperties: true,
    },
  },
  required: ['error'],
} as const;

const topicConfigSchema = {
  type: 'object',
  properties: {
    persistence: { type: 'string', enum: ['sync', 'async', 'memory'] },
    retentionMs: { type: 'integer', minimum: -1 },
    retentionBytes: { type: 'integer', minimum: -1 },
  },
} as const;

export const partitionDescriptionSchema = {
  type: 'object',
  properties: {
    partition: { type: 'integer' },
    leader: { type: ['integer', 'null'] },
    term: { type: 'integer' },
    replicas: { type: 'array', items: { type: 'integer' } },
    logStartOffset: { type: 'integer' },
    highWatermark: { type: 'integer' },
  },
  required: ['partition', 'leader', 'term', 'replicas', 'logStartOffset', 'highWatermark'],
} as const;

export const topicDescriptionSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    config: { ...topicConfigSchema, required: ['persistence', 'retentionMs', 'retentionBytes'] },
    partitions: { type: 'array', items: partitionDescriptionSchema },
  },
  required: ['name', 'config', 'partitions'],
} as const;

export const createTopicBodySchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    partitions: { type: 'integer', minimum: 1, maximum: 10_000 },
    replicationFactor: { type: 'integer' },
    config: { ...topicConfigSchema, additionalProperties: false },
  },
  required: ['name'],
  additionalProperties: false,
} as const;

export const topicParamsSchema = {
  type: 'object',
  properties: { topic: { type: 'string' } },
  required: ['topic'],
} as const;

export const partitionParamsSchema = {
  type: 'object',
  properties: { topic: { type: 'string' }, partition: { type: 'integer', minimum: 0 } },
  required: ['topic', 'partition'],
} as const;

export const produceBodySchema = {
  type: 'object',
  properties: {
    records: {
      type: 'array',
      minItems: 1,
      maxItems: 100_000,
      items: {
        type: 'object',
        properties: {
          key: { type: ['string', 'null'] },
          value: { type: 'string' },
          headers: {
            type: ['object', 'null'],
            additionalProperties: { type: ['string', 'null'] },
          },
          partition: { type: 'integer', minimum: 0 },
          timestamp: { type: 'integer', minimum: 0 },
        },
        required: ['value'],
        additionalProperties: false,
      },
    },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    producer: {
      type: 'object',
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 255 },
        epoch: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
        sequence: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
      },
      required: ['id', 'epoch', 'sequence'],
      additionalProperties: false,
    },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 300_000 },
  },
  required: ['records'],
  additionalProperties: false,
} as const;

export const produceResponseSchema = {
  type: 'object',
  properties: {
    offsets: {
      type: 'array',
      items: {
        type: 'object',
        properties: { partition: { type: 'integer' }, offset: { type: 'integer' } },
        required: ['partition', 'offset'],
      },
    },
    duplicate: { type: 'boolean' },
  },
  required: ['offsets', 'duplicate'],
} as const;

export const fetchQuerySchema = {
  type: 'object',
  properties: {
    offset: { type: 'string', pattern: '^(earliest|latest|[0-9]{1,16})$' },
    limit: { type: 'integer', minimum: 1, maximum: FETCH_LIMIT_MAX },
    maxBytes: { type: 'integer', minimum: 1, maximum: 64 * 1024 * 1024 },
    waitMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    consistency: { type: 'string', enum: ['local', 'linearizable'] },
    minOffset: { type: 'integer', minimum: 0 },
  },
  additionalProperties: false,
} as const;

export const fetchedRecordSchema = {
  type: 'object',
  properties: {
    offset: { type: 'integer' },
    partition: { type: 'integer' },
    key: { type: ['string', 'null'] },
    value: { type: 'string' },
    headers: { type: ['object', 'null'], additionalProperties: { type: ['string', 'null'] } },
    timestamp: { type: 'integer' },
  },
  required: ['offset', 'value', 'timestamp'],
} as const;

export const fetchResponseSchema = {
  type: 'object',
  properties: {
    records: { type: 'array', items: fetchedRecordSchema },
    nextOffset: { type: 'integer' },
    highWatermark: { type: 'integer' },
    logStartOffset: { type: 'integer' },
  },
  required: ['records', 'nextOffset', 'highWatermark', 'logStartOffset'],
} as const;

export const clusterResponseSchema = {
  type: 'object',
  properties: {
    clusterId: { type: 'string' },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'integer' }, url: { type: 'string' }, alive: { type: 'boolean' } },
        required: ['id', 'url', 'alive'],
      },
    },
    metadataLeader: { type: ['integer', 'null'] },
  },
  required: ['clusterId', 'nodes', 'metadataLeader'],
} as const;

/** Error responses a route may give, for the OpenAPI document and the docs test. */
export function errorResponses(...statuses: number[]): Record<number, typeof errorSchema> {
  const out: Record<number, typeof errorSchema> = {};
  for (const status of statuses) out[status] = errorSchema;
  return out;
}
