// What every call of the SDK takes: an AbortSignal and a deadline (timeoutMs). A caller's abort
// rejects with the signal's reason, as fetch() does; a deadline that passes rejects with a
// RaftlogError TIMEOUT (the outcome of a write is then unknown, as with a 504).

import { deadlineError } from './errors.js';

/** Options of every call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Deadline of the whole call, retries included. Default: bounded by the retry budget alone. */
  timeoutMs?: number;
}

/** Runs `body` with one signal that fires on the caller's abort or at the deadline. */
export async function withDeadline<T>(
  options: CallOptions | undefined,
  what: string,
  body: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const timeoutMs = options?.timeoutMs;
  const callerSignal = options?.signal;
  if (timeoutMs === undefined) return body(callerSignal);
  if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be >= 0, got ${timeoutMs}`);
  callerSignal?.throwIfAborted();
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = callerSignal ? AbortSignal.any([callerSignal, deadline]) : deadline;
  try {
    return await body(signal);
  } catch (error) {
    if (deadline.aborted && !callerSignal?.aborted) throw deadlineError(timeoutMs, what);
    throw error;
  }
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Sleeps `ms`; an abort rejects with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
