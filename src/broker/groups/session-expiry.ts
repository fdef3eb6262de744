// The metadata leader's session timer: every `checkIntervalMs` it asks the SessionClock which
// members' sessions ran out and proposes their expiry (one command for all of them). Other nodes
// keep no clocks; whichever node leads next starts every session afresh.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ExpiringMember, SessionStamp } from './protocol.js';
import { SessionClock } from './session-clock.js';

/** What the timer needs of the node. */
export interface SessionExpiryHost {
  /** The metadata term while this node leads the metadata group, else null. */
  leadingTerm(): number | null;
  /** Every member of every group, as this node has applied them. */
  sessions(): Iterable<SessionStamp>;
  /** Proposes their expiry through the metadata group; settles once applied. */
  expire(members: ExpiringMember[]): Promise<unknown>;
  logger: Logger;
}

/** A check this much later than the previous one means the process stalled: every clock restarts. */
const PAUSE_TOLERANCE_MS_MIN = 1000;
/** Members expired by one command at most (the rest go in the next check). */
const EXPIRED_PER_COMMAND_MAX = 1000;

export class SessionExpiry {
  private readonly clock: SessionClock;
  private timer: NodeJS.Timeout | null = null;
  private proposing = false;

  constructor(
    private readonly host: SessionExpiryHost,
    private readonly checkIntervalMs: number,
  ) {
    this.clock = new SessionClock(Math.max(PAUSE_TOLERANCE_MS_MIN, checkIntervalMs * 5));
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    const term = this.host.leadingTerm();
    if (term === null) {
      this.clock.reset();
      return;
    }
    const expired = this.clock.check(performance.now(), term, this.host.sessions());
    // One proposal at a time; a member still listed next time is proposed again (the command is
    // a no-op for a member that heartbeated in between).
    if (expired.length === 0 || this.proposing) return;
    this.proposing = true;
    const batch = expired.slice(0, EXPIRED_PER_COMMAND_MAX);
    this.host
      .expire(batch)
      .then(() => this.host.logger.info({ members: batch.length }, 'consumer group sessions expired'))
      .catch((error: Error) =>
        this.host.logger.warn({ err: error.message }, 'could not expire consumer group sessions'),
      )
      .finally(() => {
        this.proposing = false;
      });
  }
}
