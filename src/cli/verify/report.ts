// What verify prints: the live status line and the final lines with the verdict.

import type { Checker, FindingKind } from './checker.js';
import type { RunStats } from './run.js';

const LABELS: ReadonlyArray<readonly [FindingKind, string]> = [
  ['loss', 'loss'],
  ['duplicate', 'duplicates'],
  ['reordering', 'reordering'],
  ['gap', 'offset gaps'],
  ['stale', 'stale linearizable reads'],
  ['divergence', 'divergence'],
  ['unverified', 'unverified replicas'],
];

/** Acknowledged records the slowest replica has not returned yet. */
function lagOf(checker: Checker, replicas: number[]): number {
  const slowest = Math.min(...replicas.map((id) => checker.readBy(id)));
  return replicas.length === 0 ? 0 : checker.acknowledged - slowest;
}

function findings(checker: Checker): string {
  return LABELS.map(([kind, label]) => `${label} ${checker.count(kind)}`).join(', ');
}

export function statusLine(
  checker: Checker,
  stats: RunStats,
  replicas: number[],
  elapsedSeconds: number,
): string {
  const read = replicas.map((id) => `n${id} ${checker.readBy(id)}`).join(' ');
  return (
    `${elapsedSeconds.toFixed(0)}s acked ${checker.acknowledged} read ${read} lag ${lagOf(checker, replicas)}` +
    ` | ${findings(checker)}${stats.sendFailures > 0 ? ` | unacknowledged ${stats.sendFailures}` : ''}`
  );
}

export function finalLines(checker: Checker, stats: RunStats, replicas: number[]): string {
  const lines = [
    `acknowledged ${checker.acknowledged}, unacknowledged (failed or unknown) ${stats.sendFailures}`,
    `read back: ${replicas.map((id) => `n${id} ${checker.readBy(id)}`).join(', ')} (lag ${lagOf(checker, replicas)})`,
    `linearizable reads ${stats.linearizableReads} (errors ${stats.linearizableErrors}), read-your-writes reads ${stats.readYourWrites} (replica behind ${stats.readYourWritesLagging}), read errors ${stats.readErrors}`,
    findings(checker),
  ];
  for (const [kind, label] of LABELS) {
    for (const example of checker.examples.get(kind) ?? []) lines.push(`  ${label}: ${example}`);
  }
  lines.push(
    checker.clean
      ? 'verdict: OK'
      : `verdict: FAILED (${LABELS.filter(([kind]) => checker.count(kind) > 0)
          .map(([, label]) => label)
          .join(', ')})`,
  );
  return `${lines.join('\n')}\n`;
}
