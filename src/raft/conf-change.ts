// Single-server membership changes, carried as the data of a ConfChange entry.

import { assert, RaftError } from './errors.js';
import type { ConfState, NodeId } from './types.js';

export enum ConfChangeType {
  /** Add a non-voting replica that receives the log. */
  AddLearner = 0,
  /** Add a voter, or promote a learner to voter. */
  AddVoter = 1,
  /** Remove a voter or learner. */
  Remove = 2,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
}

export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = new Uint8Array(5);
  bytes[0] = change.type;
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  return bytes;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.length === 5, `conf change entry of ${data.length} bytes, expected 5`);
  const type = data[0] as ConfChangeType;
  assert(type <= ConfChangeType.Remove, `unknown conf change type ${type}`);
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  return { type, nodeId };
}

/** The membership after a change; throws ConfChangeRejected for a change that makes no sense. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== change.nodeId);
  const learners = conf.learners.filter((id) => id !== change.nodeId);
  switch (change.type) {
    case ConfChangeType.AddLearner:
      if (conf.voters.includes(change.nodeId)) {
        throw new RaftError(
          'ConfChangeRejected',
          `node ${change.nodeId} is a voter; demotion is not supported`,
        );
      }
      learners.push(change.nodeId);
      break;
    case ConfChangeType.AddVoter:
      voters.push(change.nodeId);
      break;
    case ConfChangeType.Remove:
      break;
  }
  if (voters.length === 0)
    throw new RaftError('ConfChangeRejected', 'a change may not remove the last voter');
  voters.sort((a, b) => a - b);
  learners.sort((a, b) => a - b);
  return { voters, learners };
}
