// One progress line per phase while the suite runs: what runs, the time left and the rate so far.
// On a terminal the line is rewritten in place every second; otherwise a line every 5 s.

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

const PIPE_INTERVAL_MS = 5_000;
const TTY_INTERVAL_MS = 1_000;

export class Progress {
  constructor(
    private readonly output: ProgressOutput,
    private readonly prefix: string,
  ) {}

  /** A progress reporter for one phase; call done() when it ends. */
  phase(what: string, seconds: number, unit: string, count: () => number): { done: () => void } {
    const startedMs = performance.now();
    const tty = this.output.isTTY === true;
    const line = () => {
      const elapsedS = (performance.now() - startedMs) / 1000;
      const leftS = Math.max(0, seconds - elapsedS);
      const rate = elapsedS > 0 ? count() / elapsedS : 0;
      return `[${this.prefix}] ${what}: ${leftS.toFixed(0)} s left, ${formatRate(rate)} ${unit} so far`;
    };
    if (!tty) this.output.write(`[${this.prefix}] ${what}: ${seconds} s\n`);
    const timer = setInterval(
      () => this.output.write(tty ? `\r\x1b[2K${line()}` : `${line()}\n`),
      tty ? TTY_INTERVAL_MS : PIPE_INTERVAL_MS,
    );
    timer.unref();
    return {
      done: () => {
        clearInterval(timer);
        const elapsedS = (performance.now() - startedMs) / 1000;
        const rate = elapsedS > 0 ? count() / elapsedS : 0;
        const end = `[${this.prefix}] ${what}: done in ${elapsedS.toFixed(1)} s, ${formatRate(rate)} ${unit}`;
        this.output.write(tty ? `\r\x1b[2K${end}\n` : `${end}\n`);
      },
    };
  }

  /** A one-off line (a cluster starting, a topic being created). */
  note(text: string): void {
    this.output.write(`[${this.prefix}] ${text}\n`);
  }
}

function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}
