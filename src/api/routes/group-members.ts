// Consumer-group membership: join, heartbeat, leave (commands of the metadata group, proposed on
// its leader, forwarded there from any node), and the group listing and description (read on
// any node after confirming with the metadata leader). The protocol is in
// src/broker/groups/membership.ts and docs/api.md.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { MemberAssignment, MetadataCommand } from '../../broker/facade.js';
import { SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN } from '../../broker/groups/protocol.js';
import type { ApiContext } from '../context.js';
import { metadataLeaderOf, relayTo } from '../forward.js';
import { METADATA_SYNC_TIMEOUT_MS, topicMeta } from '../params.js';
import { errorResponses, SAFE_INTEGER_MAX } from '../schemas.js';
import { MEMBER_ID_MAX_CHARS, validateGroupName, validateTopicField } from './groups.js';

/** Topics one member may read. */
export const TOPICS_PER_MEMBER_MAX = 100;
export const SESSION_TIMEOUT_MS_DEFAULT = 10_000;
const METADATA_WRITE_TIMEOUT_MS = 10_000;

const assignmentSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer' },
    offset: { type: 'integer' },
  },
  required: ['topic', 'partition'],
} as const;

const memberAssignmentSchema = {
  type: 'object',
  properties: {
    memberId: { type: 'string' },
    generation: { type: 'integer' },
    heartbeatIntervalMs: { type: 'integer' },
    assignments: { type: 'array', items: assignmentSchema },
  },
  required: ['memberId', 'generation', 'heartbeatIntervalMs', 'assignments'],
} as const;

const groupParamsSchema = {
  type: 'object',
  properties: { group: { type: 'string' } },
  required: ['group'],
} as const;

const memberParamsSchema = {
  type: 'object',
  properties: { group: { type: 'string' }, memberId: { type: 'string', maxLength: MEMBER_ID_MAX_CHARS } },
  required: ['group', 'memberId'],
} as const;

const joinBodySchema = {
  type: 'object',
  properties: {
    topics: { type: 'array', minItems: 1, maxItems: TOPICS_PER_MEMBER_MAX, items: { type: 'string' } },
    sessionTimeoutMs: {
      type: 'integer',
      minimum: SESSION_TIMEOUT_MS_MIN,
      maximum: SESSION_TIMEOUT_MS_MAX,
      default: SESSION_TIMEOUT_MS_DEFAULT,
    },
  },
  required: ['topics'],
  additionalProperties: false,
} as const;

const heartbeatBodySchema = {
  type: 'object',
  properties: { generation: { type: 'integer', minimum: 0, maximum: SAFE_INTEGER_MAX } },
  required: ['generation'],
  additionalProperties: false,
} as const;

const groupListSchema = {
  type: 'object',
  properties: {
    groups: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          group: { type: 'string' },
          members: { type: 'integer' },
          generation: { type: 'integer' },
        },
        required: ['group', 'members', 'generation'],
      },
    },
  },
  required: ['groups'],
} as const;

const groupDescriptionSchema = {
  type: 'object',
  properties: {
    group: { type: 'string' },
    generation: { type: 'integer' },
    members: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          memberId: { type: 'string' },
          topics: { type: 'array', items: { type: 'string' } },
          sessionTimeoutMs: { type: 'integer' },
          lastHeartbeatMs: { type: 'integer' },
          assignments: { type: 'array', items: assignmentSchema },
          revoking: {
            type: 'array',
            items: {
              type: 'object',
              properties: { topic: { type: 'string' }, partition: { type: 'integer' } },
              required: ['topic', 'partition'],
            },
          },
        },
        required: ['memberId', 'topics', 'sessionTimeoutMs', 'lastHeartbeatMs', 'assignments', 'revoking'],
      },
    },
    offsets: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          topic: { type: 'string' },
          partition: { type: 'integer' },
          offset: { type: 'integer' },
          highWatermark: { type: 'integer' },
          lag: { type: 'integer' },
        },
        required: ['topic', 'partition', 'offset', 'highWatermark', 'lag'],
      },
    },
  },
  required: ['group', 'generation', 'members', 'offsets'],
} as const;

/** A fresh member id: the broker's, so two joins never share one (64 random bits). */
function newMemberId(): string {
  return `m-${randomBytes(8).toString('hex')}`;
}

export function groupMemberRoutes(context: ApiContext): FastifyPluginAsync {
  const { broker } = context;

  /**
   * Runs a membership command on the metadata leader. Elsewhere the request is forwarded there and
   * its answer relayed (`reply.sent` is then true, and the result undefined).
   */
  async function propose(
    request: FastifyRequest,
    reply: FastifyReply,
    command: () => MetadataCommand,
  ): Promise<MemberAssignment | undefined> {
    if (!broker.isMetadataLeader()) {
      await relayTo(context, request, reply, metadataLeaderOf(broker), request.body);
      return undefined;
    }
    const result = await broker.proposeMetadata(command(), METADATA_WRITE_TIMEOUT_MS);
    if (!result.ok) throw result.error;
    return result.member;
  }

  return async (app: FastifyInstance) => {
    app.post<{ Params: { group: string }; Body: { topics: string[]; sessionTimeoutMs: number } }>(
      '/v1/groups/:group/members',
      {
        schema: {
          summary: 'Join a consumer group: a member id, the generation and its assigned partitions',
          params: groupParamsSchema,
          body: joinBodySchema,
          response: { 200: memberAssignmentSchema, ...errorResponses(400, 404, 503, 504) },
        },
      },
      async (request, reply) => {
        const { group } = request.params;
        validateGroupName(group);
        const { topics, sessionTimeoutMs } = request.body;
        for (const [index, topic] of topics.entries()) validateTopicField(topic, `body/topics/${index}`);
        for (const topic of topics) await topicMeta(broker, topic);
        const member = await propose(request, reply, () => ({
          type: 'joinGroup',
          group,
          memberId: newMemberId(),
          topics,
          sessionTimeoutMs,
          nowMs: Date.now(),
        }));
        return reply.sent ? reply : member;
      },
    );

    app.post<{ Params: { group: string; memberId: string }; Body: { generation: number } }>(
      '/v1/groups/:group/members/:memberId/heartbeat',
      {
        schema: {
          summary: "A member's heartbeat: its assignment now and the current generation",
          params: memberParamsSchema,
          body: heartbeatBodySchema,
          response: { 200: memberAssignmentSchema, ...errorResponses(400, 404, 503, 504) },
        },
      },
      async (request, reply) => {
        const { group, memberId } = request.params;
        validateGroupName(group);
        const member = await propose(request, reply, () => ({
          type: 'heartbeatGroup',
          group,
          memberId,
          generation: request.body.generation,
          nowMs: Date.now(),
        }));
        return reply.sent ? reply : member;
      },
    );

    app.delete<{ Params: { group: string; memberId: string } }>(
      '/v1/groups/:group/members/:memberId',
      {
        schema: {
          summary: 'Leave a consumer group: its partitions move to the other members at once',
          params: memberParamsSchema,
          response: errorResponses(400, 404, 503, 504),
        },
      },
      async (request, reply) => {
        const { group, memberId } = request.params;
        validateGroupName(group);
        await propose(request, reply, () => ({ type: 'leaveGroup', group, memberId }));
        return reply.sent ? reply : reply.code(204).send();
      },
    );

    app.get(
      '/v1/groups',
      {
        schema: {
          summary: 'Every consumer group with members or committed offsets',
          response: { 200: groupListSchema, ...errorResponses(503) },
        },
      },
      async () => {
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        return { groups: broker.groups() };
      },
    );

    app.get<{ Params: { group: string } }>(
      '/v1/groups/:group',
      {
        schema: {
          summary: "A consumer group's generation, members, assignments, offsets and lag",
          params: groupParamsSchema,
          response: { 200: groupDescriptionSchema, ...errorResponses(400, 503) },
        },
      },
      async (request) => {
        const { group } = request.params;
        validateGroupName(group);
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        return describeGroup(context, group);
      },
    );
  };
}

function describeGroup({ broker }: ApiContext, group: string) {
  const description = broker.groupMembers(group);
  const nowMs = Date.now();
  const members = (description?.members ?? []).map(({ lastHeartbeatAtMs, ...member }) => ({
    ...member,
    // The leader's clock stamped it; another node's clock may be a little apart.
    lastHeartbeatMs: Math.max(0, nowMs - lastHeartbeatAtMs),
  }));
  const offsets = broker.groupOffsets(group).map((committed) => {
    const placement = broker.partition(committed.topic, committed.partition);
    const highWatermark = broker.partitionStatus(placement.groupId)?.highWatermark ?? committed.offset;
    return { ...committed, highWatermark, lag: Math.max(0, highWatermark - committed.offset) };
  });
  return { group, generation: description?.generation ?? 0, members, offsets };
}
