// One line per Raft message: type, from→to, term, then the fields that kind carries. Shared by the
// golden interaction tests and the simulator's trace, so both read the same.

import { type Entry, EntryType, type Message, MessageType } from '../../src/raft/index.js';

/** `[first..last]` for count entries from first. */
export function describeRange(first: number, count: number): string {
  if (count === 0) return '[]';
  return count === 1 ? `[${first}]` : `[${first}..${first + count - 1}]`;
}

export function describeMessage(m: Message): string {
  const head = `${MessageType[m.type]} ${m.from}→${m.to} t${m.term}`;
  switch (m.type) {
    case MessageType.App:
      return `${head} prev ${m.prevIndex}/t${m.prevTerm} e${describeRange(m.prevIndex + 1, m.entries.length)} c${m.commit}`;
    case MessageType.AppResp:
      if (m.reject) {
        return `${head} REJECT i${m.rejectedIndex} hint ${m.hintIndex}/t${m.hintTerm}${recovering(m.recovering)}`;
      }
      return `${head} i${m.matchIndex}${recovering(m.recovering)}`;
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} last ${m.lastIndex}/t${m.lastTerm}${m.transfer ? ' transfer' : ''}${recovering(m.recovering)}`;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head} ${m.reject ? 'REJECT' : 'GRANT'}`;
    case MessageType.Heartbeat:
      return `${head} c${m.commit} round ${m.round}`;
    case MessageType.HeartbeatResp:
      return `${head} round ${m.round}${recovering(m.recovering)}`;
    case MessageType.Commit:
      return `${head} c${m.commit} at ${m.matchIndex}/t${m.matchTerm}`;
    case MessageType.Snapshot: {
      const meta = m.snapshot.metadata;
      return `${head} snap ${meta.index}/t${meta.term} voters ${meta.confState.voters.join(',')} c${m.commit} term-start ${m.termStartIndex}`;
    }
    case MessageType.ReadIndex:
      return `${head} request ${m.requestId}`;
    case MessageType.ReadIndexResp:
      return `${head} request ${m.requestId} index ${m.readIndex}`;
    case MessageType.TransferLeader:
      return `${head} to ${m.transferee}`;
    case MessageType.TimeoutNow:
      return head;
  }
}

const text = new TextDecoder();

/** `index/tterm` and the data as text; a conf change is named, an empty entry is the leader's no-op. */
export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) return `${e.index}/t${e.term} conf-change`;
  return e.data.length === 0
    ? `${e.index}/t${e.term} no-op`
    : `${e.index}/t${e.term} "${text.decode(e.data)}"`;
}

function recovering(flag: boolean): string {
  return flag ? ' recovering' : '';
}
