// The metadata state machine: validation, placement spread, deletion and group offsets.

import { describe, expect, it } from 'vitest';
import { type MetadataCommand, MetadataState, type TopicConfig } from '../../src/broker/metadata-state.js';

const config: TopicConfig = { persistence: 'async', retentionMs: -1, retentionBytes: -1 };
const create = (name: string, partitions = 3, replicationFactor = 3): MetadataCommand => ({
  type: 'createTopic',
  name,
  partitions,
  replicationFactor,
  config,
});

describe('metadata state', () => {
  it('places replicas round-robin with preferred leaders spread over the nodes', () => {
    const state = new MetadataState([3, 1, 2]);
    const result = state.apply(create('orders', 6, 2));
    expect(result.ok).toBe(true);
    const topic = state.topic('orders');
    expect(topic.partitions.map((p) => p.replicas)).toEqual([
      [1, 2],
      [2, 3],
      [3, 1],
      [1, 2],
      [2, 3],
      [3, 1],
    ]);
    expect(new Set(topic.partitions.map((p) => p.groupId)).size).toBe(6);
  });

  it('continues placement where the last topic stopped', () => {
    const state = new MetadataState([1, 2, 3]);
    state.apply(create('a', 1, 1));
    state.apply(create('b', 1, 1));
    expect(state.topic('b').partitions[0]!.replicas).toEqual([2]);
  });

  it('refuses bad names, bad replication factors and duplicates with their codes', () => {
    const state = new MetadataState([1, 2, 3]);
    const codeOf = (command: MetadataCommand) => {
      const result = state.apply(command);
      return result.ok ? 'ok' : result.error.code;
    };
    expect(codeOf(create('..'))).toBe('INVALID_TOPIC_NAME');
    expect(codeOf(create('has space'))).toBe('INVALID_TOPIC_NAME');
    expect(codeOf(create('x'.repeat(250)))).toBe('INVALID_TOPIC_NAME');
    expect(codeOf(create('x'.repeat(249)))).toBe('ok');
    expect(codeOf(create('t', 1, 4))).toBe('INVALID_REPLICATION_FACTOR');
    expect(codeOf(create('t', 1, 0))).toBe('INVALID_REPLICATION_FACTOR');
    expect(codeOf(create('t'))).toBe('ok');
    expect(codeOf(create('t'))).toBe('TOPIC_EXISTS');
    expect(codeOf({ type: 'deleteTopic', name: 'nope' })).toBe('UNKNOWN_TOPIC');
  });

  it('never reuses a group id after a delete', () => {
    const state = new MetadataState([1, 2, 3]);
    state.apply(create('t', 2));
    const first = state.topic('t').partitions.map((p) => p.groupId);
    state.apply({ type: 'deleteTopic', name: 't' });
    state.apply(create('t', 2));
    const second = state.topic('t').partitions.map((p) => p.groupId);
    expect(second.some((id) => first.includes(id))).toBe(false);
  });

  it('keeps group offsets, drops them with their topic, and survives a snapshot', () => {
    const state = new MetadataState([1, 2, 3]);
    state.apply(create('orders', 2));
    state.apply(create('other', 1));
    const commit: MetadataCommand = {
      type: 'commitOffsets',
      group: 'g',
      offsets: [
        { topic: 'orders', partition: 1, offset: 18 },
        { topic: 'other', partition: 0, offset: 3 },
      ],
    };
    expect(state.apply(commit).ok).toBe(true);
    const bad = state.apply({
      type: 'commitOffsets',
      group: 'g',
      offsets: [{ topic: 'orders', partition: 9, offset: 1 }],
    });
    expect(bad.ok ? 'ok' : bad.error.code).toBe('UNKNOWN_PARTITION');
    expect(state.offsetsOf('g', 'orders')).toEqual([{ topic: 'orders', partition: 1, offset: 18 }]);

    const copy = new MetadataState([1, 2, 3]);
    copy.restore(state.serialize());
    expect(copy.offsetsOf('g')).toEqual(state.offsetsOf('g'));
    expect(copy.topic('orders')).toEqual(state.topic('orders'));
    expect(copy.nextGroupId).toBe(state.nextGroupId);

    state.apply({ type: 'deleteTopic', name: 'orders' });
    expect(state.offsetsOf('g')).toEqual([{ topic: 'other', partition: 0, offset: 3 }]);
  });
});
