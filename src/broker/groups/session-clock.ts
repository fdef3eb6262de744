// When a member's session has run out, judged by the metadata leader alone with its own
// monotonic clock; the decision then goes through Raft as an `expireMembers` command, so every
// node removes the same members at the same index. Pure: the clock comes in as an argument.
//
// The clock starts for a member when this leader first sees it, and again whenever its heartbeat
// count (replicated state) has moved. A new leadership (another term) and a stretch between two
// checks longer than `pauseToleranceMs` (this process was paused, or its loop stalled: heartbeats
// may be queued unapplied) forget every clock, so each member gets a whole session again rather
// than all expiring at once. A session therefore never ends early; it may end up to one check
// interval late, or one session late after a leader change.

import type { ExpiringMember, SessionStamp } from './protocol.js';

interface Seen {
  heartbeats: number;
  sinceMs: number;
}

export class SessionClock {
  private readonly seen = new Map<string, Seen>();
  private term = -1;
  private lastCheckMs: number | null = null;

  constructor(private readonly pauseToleranceMs: number) {}

  /** Not leading: forget every clock. */
  reset(): void {
    this.seen.clear();
    this.term = -1;
    this.lastCheckMs = null;
  }

  /** The members whose session ran out by `nowMs` (monotonic), as this leader in `term` sees it. */
  check(nowMs: number, term: number, members: Iterable<SessionStamp>): ExpiringMember[] {
    const paused = this.lastCheckMs !== null && nowMs - this.lastCheckMs > this.pauseToleranceMs;
    if (term !== this.term || paused) this.seen.clear();
    this.term = term;
    this.lastCheckMs = nowMs;
    const expired: ExpiringMember[] = [];
    const present = new Set<string>();
    for (const { group, memberId, heartbeats, sessionTimeoutMs } of members) {
      // Group names have no newline.
      const key = `${group}\n${memberId}`;
      present.add(key);
      const seen = this.seen.get(key);
      if (!seen || seen.heartbeats !== heartbeats) {
        this.seen.set(key, { heartbeats, sinceMs: nowMs });
      } else if (nowMs - seen.sinceMs >= sessionTimeoutMs) {
        expired.push({ group, memberId, heartbeats });
      }
    }
    for (const key of this.seen.keys()) if (!present.has(key)) this.seen.delete(key);
    return expired;
  }
}
