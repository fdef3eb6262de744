// The short version of chaos:cli-produce (test/chaos/cli-produce-kill.ts): the built `raftlog
// produce` reads 4,000 KEY|NUMBER lines into 3 partitions on three real node processes while the
// leader of partition 0 is SIGKILLed mid-stream; every line is then in the topic exactly once, on
// its key's partition, in file order per key. Needs dist/ (`npm run build`).

import { expect, it } from 'vitest';
import { runProduceKill } from '../chaos/cli-produce-common.js';

it('produce from stdin loses, duplicates and reorders no line while a partition leader is killed', async () => {
  const log: string[] = [];
  const result = await runProduceKill({
    lines: 4_000,
    partitions: 3,
    keys: 12,
    killAtShare: 0.25,
    holdStdinUntilKill: true,
    produceTimeoutMs: 30_000,
    log: (line) => log.push(line),
  });
  expect(result.faults, log.join('\n')).toEqual([]);
  expect(result.perKey.every(({ expected, found, inOrder }) => expected === found && inOrder)).toBe(true);
}, 60_000);
