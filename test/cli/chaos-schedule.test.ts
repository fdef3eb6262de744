// The chaos schedule of `raftlog dev --chaos`: a pure function of the seed, and within the policy
// (one fault at a time, touching one node or one pair, so a majority always serves).

import { describe, expect, it } from 'vitest';
import {
  CHAOS_NODES_MIN,
  describeFault,
  faultSchedule,
  linksCut,
  SCHEDULE_LIMITS_DEFAULT,
  type ScheduledFault,
} from '../../src/cli/chaos/schedule.js';

function take(seed: number, nodes: number, count: number): ScheduledFault[] {
  const faults: ScheduledFault[] = [];
  for (const scheduled of faultSchedule(seed, nodes)) {
    faults.push(scheduled);
    if (faults.length === count) break;
  }
  return faults;
}

describe('chaos schedule', () => {
  it('is the same for the same seed, and differs for another seed', () => {
    expect(take(7, 3, 50)).toEqual(take(7, 3, 50));
    expect(take(7, 3, 50)).not.toEqual(take(8, 3, 50));
    expect(take(7, 5, 50)).toEqual(take(7, 5, 50));
  });

  it('starts with the faults printed for seed 7 (a change here changes every replayed run)', () => {
    expect(take(7, 3, 4).map(describeFault)).toEqual([
      'kill n3 (SIGKILL), restart in 3.8 s',
      'cut n1 -> n2 (one way) for 3.5 s',
      'isolate n2 (every link to and from it cut) for 4.8 s',
      'kill n3 (SIGKILL), restart in 1.8 s',
    ]);
  });

  it('keeps every fault within the policy: one node or one pair, durations and gaps within the limits', () => {
    const kinds = new Set<string>();
    for (const nodes of [3, 5]) {
      for (const { fault, quietMs, durationMs } of take(1234, nodes, 500)) {
        kinds.add(fault.kind);
        expect(quietMs).toBeGreaterThanOrEqual(SCHEDULE_LIMITS_DEFAULT.quietMsMin);
        expect(quietMs).toBeLessThanOrEqual(SCHEDULE_LIMITS_DEFAULT.quietMsMax);
        expect(durationMs).toBeGreaterThanOrEqual(SCHEDULE_LIMITS_DEFAULT.durationMsMin);
        expect(durationMs).toBeLessThanOrEqual(SCHEDULE_LIMITS_DEFAULT.durationMsMax);
        // The nodes a fault touches (down, paused, or with a cut link): at most two, and the
        // nodes with every link intact and running always form a majority.
        const touched = new Set<number>();
        if ('node' in fault) touched.add(fault.node);
        for (const [from, to] of linksCut(fault, nodes)) {
          expect(from).not.toBe(to);
          for (const id of [from, to]) {
            expect(id).toBeGreaterThanOrEqual(1);
            expect(id).toBeLessThanOrEqual(nodes);
          }
          touched.add(from);
          touched.add(to);
        }
        if (fault.kind === 'isolate' || fault.kind === 'kill' || fault.kind === 'pause') {
          // The others are whole among themselves.
          expect(linksCut(fault, nodes).every(([from, to]) => from === fault.node || to === fault.node)).toBe(
            true,
          );
        } else {
          expect(touched.size).toBe(2);
        }
      }
    }
    expect([...kinds].sort()).toEqual(['cut-one-way', 'cut-pair', 'isolate', 'kill', 'pause']);
  });

  it(`refuses fewer than ${CHAOS_NODES_MIN} nodes: any fault would leave no majority`, () => {
    expect(() => faultSchedule(1, 2).next()).toThrow(/at least 3 nodes/);
  });
});
