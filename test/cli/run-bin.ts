// Runs the built executable (bin/raftlog, from dist/: `npm run build` first) to its exit, as a user
// does: stdin given whole, stdout and stderr captured; killed by PID if it outlives the timeout.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/raftlog', import.meta.url));

export interface BinRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBin(
  args: string[],
  options: { stdin?: string; timeoutMs?: number } = {},
): Promise<BinRun> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RAFTLOG_URL: '', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const run: BinRun = { code: null, stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (run.stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk));
  child.stdin!.end(options.stdin ?? '');
  return new Promise((resolve, reject) => {
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
}
