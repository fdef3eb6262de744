// The quorum arithmetic of the progress tracker: the commit index and the acknowledged heartbeat
// round are what a majority of voters reached, checked against a plain sort over seeded inputs.

import { describe, expect, it } from 'vitest';
import { ProgressTracker } from '../../src/raft/progress.js';
import { SeededRandom } from '../../src/raft/random.js';

function reference(values: number[]): number {
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[(values.length >> 1) + 1 - 1]!;
}

/** A tracker with 1 to 7 voters, ids 1..n. */
function trackerOfRandomSize(random: SeededRandom): { tracker: ProgressTracker; voters: number[] } {
  const voters = Array.from({ length: 1 + random.int(7) }, (_, i) => i + 1);
  const tracker = new ProgressTracker(256, 1 << 20);
  tracker.applyConfState({ voters, learners: [] }, 1);
  return { tracker, voters };
}

describe('progress tracker quorum', () => {
  it('commits what a majority of the voters that count stores, for 1 to 7 voters', () => {
    const random = new SeededRandom(20261123);
    for (let trial = 0; trial < 2000; trial++) {
      const { tracker, voters } = trackerOfRandomSize(random);
      const counted: number[] = [];
      for (const id of voters) {
        const pr = tracker.progress.get(id)!;
        pr.match = random.int(50);
        pr.recovering = random.int(5) === 0;
        counted.push(pr.recovering ? 0 : pr.match);
      }
      expect(tracker.committedIndex(), `trial ${trial}: ${counted.join(',')}`).toBe(reference(counted));
      // The scratch is reused: a second call on the same state gives the same answer.
      expect(tracker.committedIndex()).toBe(reference(counted));
    }
  });

  it('finds the heartbeat round a majority answered, the leader counting as answering all', () => {
    const random = new SeededRandom(7);
    for (let trial = 0; trial < 500; trial++) {
      const { tracker, voters } = trackerOfRandomSize(random);
      const current = 100;
      const rounds = voters.map((id) => {
        const round = id === 1 ? current : random.int(current);
        tracker.progress.get(id)!.ackedRound = round;
        return round;
      });
      expect(tracker.quorumAckedRound(1, current), `trial ${trial}`).toBe(reference(rounds));
    }
  });
});
