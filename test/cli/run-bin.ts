// Runs the built executable (bin/raftlog, from dist/: `npm run build` first) as a user does: stdin
// given whole, stdout and stderr captured; killed by PID if it outlives the timeout.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/raftlog', import.meta.url));

export interface BinRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BinOptions {
  stdin?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** Starts the executable; `run` fills as it writes, `exited` resolves with it at the exit. */
export function startBin(
  args: string[],
  options: BinOptions = {},
): { child: ChildProcess; run: BinRun; exited: Promise<BinRun> } {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RAFTLOG_URL: '', NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const run: BinRun = { code: null, stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (run.stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk));
  child.stdin!.end(options.stdin ?? '');
  const exited = new Promise<BinRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`raftlog ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      run.code = code;
      resolve(run);
    });
  });
  return { child, run, exited };
}

/** Runs the executable to its exit. */
export function runBin(args: string[], options: BinOptions = {}): Promise<BinRun> {
  return startBin(args, options).exited;
}
