// chaos:cli-produce — `raftlog produce T --key-separator '|' --server URL1,URL2,URL3 < file` from
// a 100,000-line file into a topic of 6 partitions on three real node processes, while the leader
// of partition 0 is killed (SIGKILL by PID) a third of the way through. Then the whole topic is
// read back: every line exactly once, on its key's partition, in file order per key. Prints the
// counts per key and a verdict; exits 1 on any fault. Every process is stopped by PID.
//
//   npm run chaos:cli-produce -- [--lines 100000 --partitions 6 --keys 40 --kill-at 0.33]

import { parseArgs } from 'node:util';
import { runProduceKill } from './cli-produce-common.js';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '100000' },
    partitions: { type: 'string', default: '6' },
    keys: { type: 'string', default: '40' },
    'kill-at': { type: 'string', default: '0.33' },
  },
});

const result = await runProduceKill({
  lines: Number(args.lines),
  partitions: Number(args.partitions),
  keys: Number(args.keys),
  killAtShare: Number(args['kill-at']),
  holdStdinUntilKill: false,
  produceTimeoutMs: 300_000,
  log: (line) => process.stderr.write(`[cli-produce] ${line}\n`),
});

for (const [name, value] of Object.entries(result.facts)) console.log(`${name.padEnd(30)} ${value}`);
console.log('');
console.log('key        expected  found  in file order');
for (const { key, expected, found, inOrder } of result.perKey) {
  console.log(
    `${key.padEnd(10)} ${String(expected).padStart(8)}  ${String(found).padStart(5)}  ${inOrder ? 'yes' : 'NO'}`,
  );
}
console.log('');
if (result.faults.length === 0) {
  console.log("VERDICT: PASS — every line exactly once, on its key's partition, in file order per key");
} else {
  console.log(`VERDICT: FAIL — ${result.faults.length} fault(s):`);
  for (const fault of result.faults) console.log(`  - ${fault}`);
  process.exitCode = 1;
}
