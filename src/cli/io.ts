// What a CLI command touches outside itself: output streams, stdin, environment, interrupts, exit
// and the composition root. Commands receive it as an argument, so tests run them in-process with
// captured output, scripted signals and a MockAgent instead of the network.

import { setFlagsFromString } from 'node:v8';
import type { Dispatcher } from 'undici';
import type { RunningServer, ServerOptions } from '../api/server.js';

/** What the CLI needs of a started node (RunningServer has more, for tests and embedding). */
export type NodeHandle = Pick<RunningServer, 'nodeId' | 'url' | 'close'>;

export interface TextOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export interface CliIo {
  stdout: TextOutput;
  stderr: TextOutput;
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Calls the listener on SIGINT and SIGTERM until the returned function is called. */
  onInterrupt(listener: (signal: InterruptSignal) => void): () => void;
  /** Ends the process now (used only to force an exit that a clean shutdown could not reach). */
  exit(code: number): void;
  /** Tests pass a MockAgent; client commands then never open a socket. */
  dispatcher?: Dispatcher;
  /** Tests pass a fake node; by default `raftlog start` loads src/api/server.js. */
  startServer?: (options: ServerOptions) => Promise<NodeHandle>;
  /** This process's flags (node and V8) from its command line. */
  execArgv: readonly string[];
  /** Sets V8 flags in this process; tests pass a recorder, so their own process keeps its flags. */
  setV8Flags(flags: string): void;
}

/** The real process. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt(listener) {
      process.on('SIGINT', listener);
      process.on('SIGTERM', listener);
      return () => {
        process.off('SIGINT', listener);
        process.off('SIGTERM', listener);
      };
    },
    exit: (code) => process.exit(code),
    execArgv: process.execArgv,
    setV8Flags: setFlagsFromString,
  };
}

/** An AbortSignal that aborts on the first interrupt, and the function that stops listening. */
export function interruptSignal(io: CliIo): { signal: AbortSignal; stopListening: () => void } {
  const controller = new AbortController();
  const stopListening = io.onInterrupt((name) => controller.abort(new Error(`interrupted by ${name}`)));
  return { signal: controller.signal, stopListening };
}

/** Colors are on only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorsEnabled(io: CliIo, output: TextOutput): boolean {
  const noColor = io.env.NO_COLOR;
  return output.isTTY === true && (noColor === undefined || noColor === '');
}
