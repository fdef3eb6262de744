// A partition leader paused (SIGSTOP) for 2.5 s while the other two elect a new leader and
// acknowledge records must not answer a linearizable read, queued while it was paused, with a
// highWatermark that misses them once it resumes. Harness: pause-reads.ts; the long run is
// test/chaos/pause-reads.ts.

import { describe, it } from 'vitest';
import { formatRound, formatSummary, runPauseRounds } from './pause-reads.js';
import { ProcessCluster } from './process-cluster.js';

const PAUSES = 3;

describe('a linearizable read sent to a paused leader', () => {
  // The three clusters run side by side: each round is mostly waiting (a pause, an election), so
  // this keeps the file near 25 s instead of 50 to 80 s, and still finds the stale reads of the
  // tick-counted lease in every mode.
  it.concurrent.for(['sync', 'async', 'memory'])(
    '%s: never answers 200 without a record acknowledged by the new leader',
    { timeout: 120_000 },
    async (persistence, { expect }) => {
      const cluster = await ProcessCluster.create(3, persistence);
      try {
        const summary = await runPauseRounds({ cluster, pauses: PAUSES });
        console.log(formatSummary(summary));
        const rounds = summary.rounds.map((r) => formatRound(persistence, r, PAUSES)).join('\n');
        expect(summary.answers.stale, rounds).toBe(0);
        // Otherwise the run proved nothing: most rounds must have had a new leader acknowledge a
        // record while the old one was paused, and a read waiting on the paused node.
        expect(summary.roundsJudged * 2, rounds).toBeGreaterThan(PAUSES);
      } finally {
        await cluster.destroy();
      }
    },
  );
});
