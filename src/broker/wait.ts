// Waiting for broker state with a deadline, woken by events, never by polling: whatever changes
// the state fires a Signal, and a waiter checks its own condition again when it does.

export type Unsubscribe = () => void;

/** Listeners told that something changed; each checks for itself what it waits for. */
export class Signal {
  private readonly listeners = new Set<() => void>();

  subscribe(listener: () => void): Unsubscribe {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(): void {
    // A listener may unsubscribe itself while this runs; a Set iterates safely past that.
    for (const listener of this.listeners) listener();
  }
}

export interface WaitOptions {
  /** What is waited for: checked at once, after each event, and at the deadline. */
  done: () => boolean;
  /** Subscribes to the events after which `done` may have come true. */
  subscribe: (listener: () => void) => Unsubscribe;
  /** Wall-clock deadline (Date.now()). */
  deadlineMs: number;
  signal?: AbortSignal;
}

/** Resolves true once `done()` holds; false at the deadline or on abort, if it does not. */
export function waitUntil({ done, subscribe, deadlineMs, signal }: WaitOptions): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  if (Date.now() >= deadlineMs || signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    let finished = false;
    const finish = (result: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = () => finish(done());
    const timer = setTimeout(() => finish(done()), deadlineMs - Date.now());
    const unsubscribe = subscribe(() => {
      if (done()) finish(true);
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
