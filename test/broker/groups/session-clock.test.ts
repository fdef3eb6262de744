// The metadata leader's session clock: expiry after a whole session without a heartbeat, never
// earlier, and a fresh session for everyone after a leader change or a pause.

import { describe, expect, it } from 'vitest';
import type { SessionStamp } from '../../../src/broker/groups/protocol.js';
import { SessionClock } from '../../../src/broker/groups/session-clock.js';

const member = (memberId: string, heartbeats: number, sessionTimeoutMs = 1000): SessionStamp => ({
  group: 'g',
  memberId,
  heartbeats,
  sessionTimeoutMs,
});

/** Checks every 100 ms from `fromMs` to `toMs`, returning the first expiry time of each member. */
function runChecks(
  clock: SessionClock,
  fromMs: number,
  toMs: number,
  members: (nowMs: number) => SessionStamp[],
  term = 1,
): Map<string, number> {
  const expiredAt = new Map<string, number>();
  for (let now = fromMs; now <= toMs; now += 100) {
    for (const e of clock.check(now, term, members(now)))
      if (!expiredAt.has(e.memberId)) expiredAt.set(e.memberId, now);
  }
  return expiredAt;
}

describe('session clock', () => {
  it('expires a member a whole session after its heartbeat count last moved, not before', () => {
    const clock = new SessionClock(1000);
    // a heartbeats every 300 ms until 2000, then stops; b never heartbeats after joining.
    const expiredAt = runChecks(clock, 0, 5000, (now) => [
      member('a', 1 + Math.floor(Math.min(now, 2000) / 300)),
      member('b', 1, 2000),
    ]);
    expect(expiredAt.get('b')).toBe(2000);
    // a's last heartbeat (count 7) was seen at 1800: it expires at 2800.
    expect(expiredAt.get('a')).toBe(2800);
  });

  it('reports the heartbeat count it saw, so a heartbeat applied meanwhile cancels the expiry', () => {
    const clock = new SessionClock(1000);
    clock.check(0, 1, [member('a', 4)]);
    expect(clock.check(1000, 1, [member('a', 4)])).toEqual([{ group: 'g', memberId: 'a', heartbeats: 4 }]);
  });

  it('gives every member a whole new session after a leader change', () => {
    const clock = new SessionClock(1000);
    runChecks(clock, 0, 900, () => [member('a', 1)], 1);
    // Term 2 at 1000: without the grace a would expire now.
    expect(clock.check(1000, 2, [member('a', 1)])).toEqual([]);
    expect(clock.check(1900, 2, [member('a', 1)])).toEqual([]);
    expect(clock.check(2000, 2, [member('a', 1)])).toHaveLength(1);
  });

  it('restarts every session after a pause longer than its tolerance, and after reset', () => {
    const clock = new SessionClock(500);
    clock.check(0, 1, [member('a', 1)]);
    expect(clock.check(3000, 1, [member('a', 1)])).toEqual([]); // paused 3 s: heartbeats may be queued
    expect(clock.check(3400, 1, [member('a', 1)])).toEqual([]);
    expect(clock.check(3800, 1, [member('a', 1)])).toEqual([]);
    expect(clock.check(4000, 1, [member('a', 1)])).toHaveLength(1);
    clock.reset();
    expect(clock.check(4100, 1, [member('a', 1)])).toEqual([]);
  });

  it('forgets members that are gone', () => {
    const clock = new SessionClock(1000);
    clock.check(0, 1, [member('a', 1)]);
    clock.check(100, 1, []);
    // a is back with the same count (a new member would have a new id; this checks the map is clean).
    expect(clock.check(1000, 1, [member('a', 1)])).toEqual([]);
  });
});
