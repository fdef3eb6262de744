// chaos:pause — linearizable reads from a paused partition leader, on three real `raftlog start`
// processes per persistence mode (harness: test/integration/pause-reads.ts). Each round SIGSTOPs
// the leader, waits for a new leader to acknowledge a record, queues a linearizable read on the
// paused node, SIGCONTs it and classifies the answer: ok, STALE (a 200 missing an acknowledged
// offset), error or timeout.
//
// Progress goes to stderr, one line per round; then JSON of the summaries and a table on stdout.
// Exits 1 if any answer was stale. Every round is bounded in time (about 30 s at worst).
//
//   npx tsx test/chaos/pause-reads.ts --pauses 20 --persistence sync,async,memory [--pause-ms 2500]
//                                     [--background]

import { parseArgs } from 'node:util';
import { formatRound, formatSummary, type PauseSummary, runPauseRounds } from '../integration/pause-reads.js';
import { ProcessCluster } from '../integration/process-cluster.js';

const { values: args } = parseArgs({
  options: {
    pauses: { type: 'string', default: '20' },
    persistence: { type: 'string', default: 'sync,async,memory' },
    'pause-ms': { type: 'string', default: '2500' },
    background: { type: 'boolean', default: false },
  },
});
const PAUSES = Number(args.pauses);
const MODES = String(args.persistence)
  .split(',')
  .map((mode) => mode.trim())
  .filter((mode) => mode !== '');
const PAUSE_MS = Number(args['pause-ms']);
const BACKGROUND_PRODUCER = Boolean(args.background);
const PAUSES_MAX = 1000;

let running: ProcessCluster | null = null;

async function main(): Promise<number> {
  if (!(Number.isInteger(PAUSES) && PAUSES > 0 && PAUSES <= PAUSES_MAX)) {
    throw new Error(`--pauses must be an integer in [1, ${PAUSES_MAX}]`);
  }
  if (!(Number.isFinite(PAUSE_MS) && PAUSE_MS > 0)) throw new Error('--pause-ms must be positive');
  const summaries: PauseSummary[] = [];
  for (const mode of MODES) {
    const cluster = await ProcessCluster.create(3, mode);
    running = cluster;
    try {
      summaries.push(
        await runPauseRounds({
          cluster,
          pauses: PAUSES,
          pauseMs: PAUSE_MS,
          backgroundProducer: BACKGROUND_PRODUCER,
          onProgress: (round, pauses) => process.stderr.write(`${formatRound(mode, round, pauses)}\n`),
        }),
      );
    } finally {
      await cluster.destroy();
      running = null;
    }
    process.stderr.write(`${formatSummary(summaries[summaries.length - 1]!)}\n`);
  }
  console.log(JSON.stringify(summaries, null, 2));
  printTable(summaries);
  const stale = summaries.reduce((sum, s) => sum + s.answers.stale, 0);
  return stale > 0 ? 1 : 0;
}

function printTable(summaries: PauseSummary[]): void {
  const header = [
    'mode',
    'pauses',
    'new leader',
    'judged',
    'ok',
    'STALE',
    'errors',
    'timeouts',
    'worst',
    's',
  ];
  const rows = summaries.map((s) => [
    s.persistence,
    String(s.roundsRun),
    String(s.roundsWithNewLeader),
    String(s.roundsJudged),
    String(s.answers.ok),
    String(s.answers.stale),
    Object.entries(s.answers.errors)
      .map(([key, count]) => `${key} ×${count}`)
      .join(', ') || '0',
    String(s.answers.timeouts),
    s.worstStale ? `hw ${s.worstStale.highWatermark} ≤ acked ${s.worstStale.highestAcked}` : '-',
    (s.elapsedMs / 1000).toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

// Ctrl-C: kill this run's nodes by PID (SIGKILL ends a stopped process too), then exit.
process.once('SIGINT', () => {
  const cluster = running;
  void (cluster ? cluster.destroy() : Promise.resolve()).finally(() => process.exit(130));
});

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    await running?.destroy();
    process.exit(2);
  },
);
