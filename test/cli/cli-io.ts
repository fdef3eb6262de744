// An in-process CliIo for tests: captured stdout/stderr, scripted stdin, env, interrupts sent on
// demand, recorded exit calls, and a MockAgent (via FakeNode) instead of the network.

import type { Dispatcher } from 'undici';
import type { ServerOptions } from '../../src/api/server.js';
import type { CliIo, InterruptSignal, NodeHandle } from '../../src/cli/io.js';

export class TestIo implements CliIo {
  out = '';
  err = '';
  readonly exits: number[] = [];
  readonly stdout = { write: (text: string) => (this.out += text), isTTY: false };
  readonly stderr = { write: (text: string) => (this.err += text), isTTY: false };
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  dispatcher?: Dispatcher;
  startServer?: (options: ServerOptions) => Promise<NodeHandle>;
  execArgv: string[] = [];
  /** V8 flags a command set (recorded; this test process keeps its own). */
  readonly v8Flags: string[] = [];
  private listeners = new Set<(signal: InterruptSignal) => void>();

  constructor(
    options: {
      stdin?: Array<string | Uint8Array>;
      env?: Record<string, string>;
      dispatcher?: Dispatcher;
    } = {},
  ) {
    this.stdin = fromChunks(options.stdin ?? []);
    this.env = { ...options.env };
    this.dispatcher = options.dispatcher;
  }

  onInterrupt(listener: (signal: InterruptSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivers SIGINT/SIGTERM to whoever listens; false when nobody does (yet). */
  interrupt(signal: InterruptSignal = 'SIGINT'): boolean {
    for (const listener of [...this.listeners]) listener(signal);
    return this.listeners.size > 0;
  }

  get listening(): boolean {
    return this.listeners.size > 0;
  }

  exit(code: number): void {
    this.exits.push(code);
  }

  setV8Flags(flags: string): void {
    this.v8Flags.push(flags);
  }

  /** stderr lines (for the "one readable line" checks). */
  get errLines(): string[] {
    return this.err.split('\n').filter((line) => line !== '');
  }

  get outLines(): string[] {
    return this.out.split('\n').filter((line) => line !== '');
  }
}

async function* fromChunks(chunks: Array<string | Uint8Array>): AsyncGenerator<Uint8Array | string> {
  for (const chunk of chunks) yield chunk;
}

/** Polls until the condition holds, failing after the deadline: tests never sleep for a condition. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
