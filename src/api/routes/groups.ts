// Consumer-group offsets: commit and read. Commits are metadata commands (replicated and durable
// through the metadata Raft group), proposed on its leader (forwarded there from any other
// node); reads confirm with the metadata leader first, so a node never answers older than a
// commit acknowledged before the read.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { MetadataCommand } from '../../broker/metadata-state.js';
import type { BrokerNode } from '../../broker/node.js';
import type { ApiContext } from '../app.js';
import { forwardRequest, METADATA_SYNC_TIMEOUT_MS, topicMeta } from '../relay.js';
import { errorResponses } from '../schemas.js';

/** Group names follow the topic name rule: 1 to 249 chars of [a-zA-Z0-9._-], not '.' or '..'. */
export const GROUP_NAME_MAX_CHARS = 249;
const GROUP_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;
/** Offsets one commit may carry (one per partition of the topics a consumer reads). */
export const OFFSETS_PER_COMMIT_MAX = 10_000;
const METADATA_WRITE_TIMEOUT_MS = 10_000;

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
}

const groupOffsetSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer', minimum: 0 },
    offset: { type: 'integer', minimum: 0 },
  },
  required: ['topic', 'partition', 'offset'],
  additionalProperties: false,
} as const;

const groupParamsSchema = {
  type: 'object',
  properties: { group: { type: 'string' } },
  required: ['group'],
} as const;

const commitBodySchema = {
  type: 'object',
  properties: {
    offsets: { type: 'array', minItems: 1, maxItems: OFFSETS_PER_COMMIT_MAX, items: groupOffsetSchema },
  },
  required: ['offsets'],
  additionalProperties: false,
} as const;

const offsetsResponseSchema = {
  type: 'object',
  properties: { offsets: { type: 'array', items: groupOffsetSchema } },
  required: ['offsets'],
} as const;

export function validateGroupName(name: string): void {
  if (
    name.length < 1 ||
    name.length > GROUP_NAME_MAX_CHARS ||
    !GROUP_NAME_PATTERN.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `params/group '${name}' is invalid: use 1 to ${GROUP_NAME_MAX_CHARS} characters of [a-zA-Z0-9._-], not '.' or '..'`,
    );
  }
}

/** Every offset names an existing topic and partition (catching up on metadata if need be). */
async function validateOffsets(broker: BrokerNode, offsets: readonly GroupOffset[]): Promise<void> {
  for (const { topic, partition } of offsets) {
    await topicMeta(broker, topic);
    broker.metadata.partition(topic, partition);
  }
}

export function groupRoutes({ broker, forwarder }: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.put<{ Params: { group: string }; Body: { offsets: GroupOffset[] } }>(
      '/v1/groups/:group/offsets',
      {
        schema: {
          summary: "Commit a consumer group's offsets (replicated through the metadata group)",
          params: groupParamsSchema,
          body: commitBodySchema,
          response: errorResponses(400, 404, 503, 504),
        },
      },
      async (request, reply) => {
        const group = request.params.group;
        validateGroupName(group);
        const offsets = request.body.offsets;
        await validateOffsets(broker, offsets);
        if (!broker.isMetadataLeader()) {
          const leader = broker.metadataLeader();
          if (leader === null || leader === broker.nodeId) {
            throw new BrokerError('NO_LEADER', 'the metadata group has no leader right now; retry shortly');
          }
          return forwardRequest(forwarder, request, reply, leader, request.body);
        }
        const command: MetadataCommand = {
          type: 'commitOffsets',
          group,
          offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
        };
        // The state machine checks the topics again: one may have been deleted meanwhile.
        const result = await broker.proposeMetadata(command, METADATA_WRITE_TIMEOUT_MS);
        if (!result.ok) throw result.error;
        return reply.code(204).send();
      },
    );

    app.get<{ Params: { group: string }; Querystring: { topic?: string } }>(
      '/v1/groups/:group/offsets',
      {
        schema: {
          summary: "A consumer group's committed offsets, of one topic or all",
          params: groupParamsSchema,
          querystring: {
            type: 'object',
            properties: { topic: { type: 'string' } },
            additionalProperties: false,
          },
          response: { 200: offsetsResponseSchema, ...errorResponses(400, 404, 503) },
        },
      },
      async (request) => {
        const group = request.params.group;
        validateGroupName(group);
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        const topic = request.query.topic;
        if (topic !== undefined) broker.metadata.topic(topic);
        return { offsets: broker.metadata.offsetsOf(group, topic) };
      },
    );
  };
}
