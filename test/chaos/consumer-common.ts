// Helpers of the consumer chaos scripts (consumer-at-least-once.ts, group-churn.ts): SDK consumer
// child processes started and stopped by PID, the "processed" files they append to (one line per
// record, fsynced before the loop moves on), and a seeded random source.

import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/** A child process running one of the worker scripts under tsx, with an IPC channel. */
export interface Worker {
  name: string;
  process: ChildProcess;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
  /** The signal that ended it, if one did. */
  signal?: NodeJS.Signals | null;
  /** Resolves once the child handles SIGTERM (it sends {type: 'ready'}), or when it exits. */
  ready: Promise<void>;
}

export function startWorker(
  name: string,
  script: string,
  config: unknown,
  onMessage?: (m: unknown) => void,
): Worker {
  const child = fork(script, [JSON.stringify(config)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let markReady: () => void = () => undefined;
  const worker: Worker = {
    name,
    process: child,
    exitCode: undefined,
    ready: new Promise<void>((resolve) => {
      markReady = resolve;
    }),
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        worker.signal = signal;
        resolve(code);
      }),
    ),
  };
  void worker.exited.then((code) => {
    worker.exitCode = code;
    markReady();
  });
  child.on('message', (message: { type?: string }) => {
    if (message?.type === 'ready') markReady();
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-4000);
  });
  void worker.exited.then((code) => {
    const expected = code === 0 || worker.signal === 'SIGKILL';
    if (!expected) process.stderr.write(`--- ${name} exited ${code ?? worker.signal}:\n${errors}\n`);
  });
  if (onMessage) child.on('message', onMessage);
  // The IPC channel may be gone when the child is killed mid-send: not an error here.
  child.on('error', () => undefined);
  return worker;
}

/** Sends `signal` to the worker's PID and waits (bounded) until it has exited. */
export async function stopWorker(
  worker: Worker,
  signal: NodeJS.Signals,
  timeoutMs = 20_000,
): Promise<number | null> {
  if (worker.exitCode !== undefined) return worker.exitCode;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  // A TERM before the child installed its handler would kill it outright, not stop it cleanly.
  if (signal === 'SIGTERM') await Promise.race([worker.ready, timeout]);
  worker.process.kill(signal);
  const result = await Promise.race([worker.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    worker.process.kill('SIGKILL');
    await worker.exited;
    throw new Error(`${worker.name} did not exit within ${timeoutMs} ms of ${signal}`);
  }
  return result;
}

export interface Processed {
  run: number;
  partition: number;
  offset: number;
}

/**
 * Reads a processed file as it grows: lines `P <run> <partition> <offset>`. A line cut short by a
 * kill is left for the next read (and never completed, which is fine: it was not fsynced whole).
 */
export class ProcessedFile {
  private position = 0;
  private rest = '';
  /** `E <run> <code>` lines: background errors and failed commits the consumers noted. */
  readonly errors = new Map<string, number>();

  constructor(readonly path: string) {}

  readNew(): Processed[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, 'r');
    const out: Processed[] = [];
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const read = readSync(fd, buffer, 0, buffer.length, this.position);
        if (read === 0) break;
        this.position += read;
        const text = this.rest + buffer.toString('utf8', 0, read);
        const lines = text.split('\n');
        this.rest = lines.pop()!;
        for (const line of lines) {
          const [kind, run, partition, offset] = line.split(' ');
          if (kind === 'E') this.errors.set(partition!, (this.errors.get(partition!) ?? 0) + 1);
          if (kind !== 'P') continue;
          out.push({ run: Number(run), partition: Number(partition), offset: Number(offset) });
        }
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

/** mulberry32: a small seeded generator, so a run can be repeated with its printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every `everyMs` until it holds; false at the deadline. */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

export function progress(tag: string, line: string): void {
  process.stderr.write(`${tag} ${new Date().toISOString().slice(11, 23)} ${line}\n`);
}
