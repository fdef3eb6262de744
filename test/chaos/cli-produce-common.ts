// The run behind chaos:cli-produce and test/cli/produce-kill.test.ts: `raftlog produce` (the
// built binary, as a child process) reads a file of KEY|NUMBER lines into a topic of several
// partitions on three real node processes, while the leader of one partition is killed (SIGKILL
// by PID) partway through. Then the whole topic is read back and checked line by line: each line
// exactly once, on its key's partition, in file order per key.

import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { partitionForKey, Raftlog } from '../../src/client/index.js';
import { eventually, ProcessCluster } from '../integration/process-cluster.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin/raftlog');
const TOPIC = 'cli-produce-kill';
const SEPARATOR = '|';

export interface ProduceKillOptions {
  lines: number;
  partitions: number;
  keys: number;
  /** The kill comes once this share of the lines is committed. */
  killAtShare: number;
  /**
   * Pipe the file into produce and close its stdin only after the kill, so the kill always comes
   * mid-stream (for short runs); else stdin is the file itself, as with `< file`.
   */
  holdStdinUntilKill: boolean;
  /** The produce child is killed (and the run fails) past this. */
  produceTimeoutMs: number;
  log: (line: string) => void;
}

export interface ProduceKillResult {
  faults: string[];
  /** What the run saw, for the report. */
  facts: Record<string, string | number>;
  perKey: Array<{ key: string; expected: number; found: number; inOrder: boolean }>;
}

/** Line i (1-based) of the file: its key and its value (the line number, so order is checkable). */
function keyOfLine(line: number, keys: number): string {
  // A multiplicative hash spreads consecutive lines over the keys without a pattern per partition.
  return `key-${(Math.imul(line, 2654435761) >>> 0) % keys}`;
}

export async function runProduceKill(options: ProduceKillOptions): Promise<ProduceKillResult> {
  const { log } = options;
  if (!existsSync(join(root, 'dist/cli/main.js'))) throw new Error('dist/ is not built: run `npm run build`');
  const workDir = mkdtempSync(join(tmpdir(), 'raftlog-cli-produce-'));
  const file = join(workDir, 'lines.txt');
  const cluster = await ProcessCluster.create(3);
  let child: ChildProcess | undefined;
  const admin = new Raftlog({ urls: [1, 2, 3].map((id) => cluster.node(id).url) });
  try {
    writeLines(file, options);
    cluster.startAll();
    await cluster.waitReady(30_000);
    const urls = [1, 2, 3].map((id) => cluster.node(id).url);
    await admin.createTopic({ name: TOPIC, partitions: options.partitions, replicationFactor: 3 });
    log(`cluster up (${urls.join(', ')}); topic '${TOPIC}' with ${options.partitions} partitions`);

    const victimPartition = 0;
    const victim = (await admin.describeTopic(TOPIC)).partitions[victimPartition]!.leader!;
    const startedMs = Date.now();
    const produce = startProduce(file, urls, options.holdStdinUntilKill);
    child = produce.child;
    log(`produce started (pid ${child.pid}) from ${options.lines} lines`);

    const killAt = Math.ceil(options.lines * options.killAtShare);
    const survivor = [1, 2, 3].find((id) => id !== victim)!;
    const committedAtKill = await killWhenCommitted(cluster, survivor, victim, killAt, produce.exited, log);
    await produce.endStdin();
    const exitCode = await withDeadline(produce.exited, options.produceTimeoutMs, () => {
      child?.kill('SIGKILL');
    });
    const produceMs = Date.now() - startedMs;
    log(`produce exited ${exitCode} after ${produceMs} ms; its stderr: ${produce.stderr().trim()}`);

    const faults: string[] = [];
    if (committedAtKill === undefined) faults.push('produce finished before the kill: nothing was tested');
    if (exitCode !== 0) faults.push(`produce exited ${exitCode}, not 0`);
    if (produce.acknowledged.records !== options.lines) {
      faults.push(`produce acknowledged ${produce.acknowledged.records} lines, not ${options.lines}`);
    }
    const logs = await readTopic(admin, options.partitions);
    const leaderAfter = (await admin.describeTopic(TOPIC)).partitions[victimPartition]!.leader;
    const check = checkLogs(logs, options);
    faults.push(...check.faults);
    return {
      faults,
      perKey: check.perKey,
      facts: {
        lines: options.lines,
        partitions: options.partitions,
        keys: options.keys,
        'killed node': `${victim} (leader of partition ${victimPartition})`,
        'records committed at the kill': committedAtKill ?? 'none: no kill',
        'produce exit code': exitCode ?? 'killed at its deadline',
        'produce time ms': produceMs,
        'acknowledgements on stdout': produce.acknowledged.records,
        '... of them deduped retries': produce.acknowledged.duplicates,
        [`partition ${victimPartition} leader after`]: leaderAfter ?? 'none',
        'records read back': logs.reduce((sum, records) => sum + records.length, 0),
      },
    };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await admin.close();
    await cluster.destroy();
    rmSync(workDir, { recursive: true, force: true });
  }
}

function writeLines(file: string, options: ProduceKillOptions): void {
  const lines = new Array<string>(options.lines);
  for (let line = 1; line <= options.lines; line++) {
    lines[line - 1] = `${keyOfLine(line, options.keys)}${SEPARATOR}${line}`;
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

function startProduce(file: string, urls: string[], holdStdin: boolean) {
  const stdin = holdStdin ? 'pipe' : openSync(file, 'r');
  const child = spawn(
    process.execPath,
    // --json: one acknowledgement per line on stdout, which says whether a retry was deduped.
    [bin, 'produce', TOPIC, '--key-separator', SEPARATOR, '--server', urls.join(','), '--json'],
    { stdio: [stdin, 'pipe', 'pipe'] },
  );
  const acknowledged = { records: 0, duplicates: 0 };
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      acknowledged.records++;
      if (line.includes('"duplicate":true')) acknowledged.duplicates++;
    }
  });
  if (typeof stdin === 'number') closeSync(stdin); // The child holds its own copy.
  let fed: Promise<void> = Promise.resolve();
  if (child.stdin) {
    const input = child.stdin;
    input.on('error', () => undefined); // produce may exit (failing) before reading it all.
    const lines = createReadStream(file);
    lines.pipe(input, { end: false });
    fed = new Promise((resolveFed) => lines.once('close', () => resolveFed()));
  }
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const endStdin = async () => {
    await fed;
    child.stdin?.end();
  };
  return { child, exited, stderr: () => stderr, endStdin, acknowledged };
}

/**
 * Polls the committed count (sum of high watermarks, asked of a node that survives) until `killAt`,
 * then kills the victim by PID. Undefined when produce exited first.
 */
async function killWhenCommitted(
  cluster: ProcessCluster,
  survivor: number,
  victim: number,
  killAt: number,
  exited: Promise<unknown>,
  log: (line: string) => void,
): Promise<number | undefined> {
  let done = false;
  void exited.then(() => {
    done = true;
  });
  for (;;) {
    if (done) return undefined;
    const answer = await cluster.request(survivor, 'GET', `/v1/topics/${TOPIC}`, undefined, 2_000);
    const committed =
      answer.status === 200
        ? (answer.body.partitions as Array<{ highWatermark: number }>).reduce(
            (s, p) => s + p.highWatermark,
            0,
          )
        : 0;
    if (committed >= killAt) {
      const pid = cluster.node(victim).process?.pid;
      log(`${committed} records committed: SIGKILL node ${victim} (pid ${pid})`);
      await cluster.kill(victim, 'SIGKILL');
      return committed;
    }
    await new Promise((wait) => setTimeout(wait, 20));
  }
}

async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolveDeadline) => {
    timer = setTimeout(resolveDeadline, timeoutMs);
  });
  const first = await Promise.race([
    promise.then(() => 'done' as const),
    deadline.then(() => 'late' as const),
  ]);
  clearTimeout(timer);
  if (first === 'late') onTimeout();
  return promise;
}

interface ReadRecord {
  key: string | null;
  value: string;
}

/** Every partition from offset 0 to its high watermark, from the survivors (once each has a leader). */
async function readTopic(client: Raftlog, partitions: number): Promise<ReadRecord[][]> {
  await eventually(
    async () => {
      try {
        const description = await client.describeTopic(TOPIC);
        return description.partitions.every((p) => p.leader !== null);
      } catch {
        return false;
      }
    },
    30_000,
    'a leader for every partition among the survivors',
  );
  const logs: ReadRecord[][] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const records: ReadRecord[] = [];
    for (let offset = 0; ; ) {
      const page = await client.fetch(TOPIC, partition, { offset, limit: 10_000 }, { readFrom: 'leader' });
      for (const record of page.records) records.push({ key: record.key ?? null, value: record.value });
      offset = page.nextOffset;
      if (offset >= page.highWatermark) break;
    }
    logs.push(records);
  }
  return logs;
}

/** Each line once, on its key's partition, with its key, in file order per key. */
function checkLogs(logs: ReadRecord[][], options: ProduceKillOptions) {
  const faults: string[] = [];
  const fault = (text: string) => {
    if (faults.length < 20) faults.push(text);
    else if (faults.length === 20) faults.push('(more faults not listed)');
  };
  const seen = new Uint8Array(options.lines + 1);
  const lastLineOfKey = new Map<string, number>();
  const found = new Map<string, number>();
  const disorderedKeys = new Set<string>();
  logs.forEach((records, partition) => {
    for (const { key, value } of records) {
      const line = Number(value);
      if (!Number.isInteger(line) || line < 1 || line > options.lines) {
        fault(`partition ${partition}: a value that is no line number: ${JSON.stringify(value)}`);
        continue;
      }
      if (seen[line]! > 0) fault(`line ${line} is in the topic twice`);
      seen[line] = 1;
      const expectedKey = keyOfLine(line, options.keys);
      if (key !== expectedKey) fault(`line ${line} has key ${JSON.stringify(key)}, not ${expectedKey}`);
      if (partitionForKey(Buffer.from(expectedKey), options.partitions) !== partition) {
        fault(`line ${line} (key ${expectedKey}) is on partition ${partition}, not its key's`);
      }
      const last = lastLineOfKey.get(expectedKey) ?? 0;
      if (line < last) {
        disorderedKeys.add(expectedKey);
        fault(`key ${expectedKey}: line ${line} comes after line ${last}, not in file order`);
      }
      lastLineOfKey.set(expectedKey, Math.max(last, line));
      found.set(expectedKey, (found.get(expectedKey) ?? 0) + 1);
    }
  });
  let missing = 0;
  for (let line = 1; line <= options.lines; line++) {
    if (seen[line] === 0 && missing++ < 10) fault(`line ${line} is missing`);
  }
  if (missing > 10) fault(`${missing} lines are missing in all`);
  const expected = new Map<string, number>();
  for (let line = 1; line <= options.lines; line++) {
    const key = keyOfLine(line, options.keys);
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  const perKey = [...expected]
    .sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }))
    .map(([key, count]) => ({
      key,
      expected: count,
      found: found.get(key) ?? 0,
      inOrder: !disorderedKeys.has(key),
    }));
  for (const { key, expected: want, found: got } of perKey) {
    if (want !== got) fault(`key ${key}: ${got} records, expected ${want}`);
  }
  return { faults, perKey };
}
