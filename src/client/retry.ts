// Bounded retry: attempts, exponential backoff with jitter, a total time budget, and the server's
// retry-after when it gives one. Shared by the producer and the consumer's fetch loops.

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attemptsMax?: number;
  /** Wait before the second attempt; doubles per attempt up to backoffMsMax. */
  backoffMs?: number;
  backoffMsMax?: number;
  /** No retry starts after this much time since the first attempt. */
  totalMsMax?: number;
}

export interface RetryPolicy {
  attemptsMax: number;
  backoffMs: number;
  backoffMsMax: number;
  totalMsMax: number;
}

export function retryPolicy(options: RetryOptions = {}, defaults: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy: RetryPolicy = {
    attemptsMax: options.attemptsMax ?? defaults.attemptsMax ?? 5,
    backoffMs: options.backoffMs ?? defaults.backoffMs ?? 100,
    backoffMsMax: options.backoffMsMax ?? defaults.backoffMsMax ?? 2_000,
    totalMsMax: options.totalMsMax ?? defaults.totalMsMax ?? 60_000,
  };
  if (!(policy.attemptsMax >= 1) || !(policy.backoffMs >= 0) || !(policy.totalMsMax >= 0)) {
    throw new RangeError(`invalid retry options: ${JSON.stringify(options)}`);
  }
  return policy;
}

/** Wait before attempt `attempt + 1` (attempt counts from 1), honouring the server's retry-after. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined): number {
  const exponential = Math.min(policy.backoffMsMax, policy.backoffMs * 2 ** (attempt - 1));
  // Jitter of ±20% keeps many clients from retrying in lockstep after a leader change.
  const jittered = exponential * (0.8 + 0.4 * Math.random());
  return Math.round(Math.max(retryAfterMs ?? 0, jittered));
}
