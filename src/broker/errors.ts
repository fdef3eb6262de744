// The broker's coded, expected failures. The codes and their HTTP statuses are the client
// contract's (src/wire/errors.ts); the API layer turns a BrokerError into a response.

import { ERROR_STATUS, type ErrorCode } from '../wire/errors.js';

export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra fields for the error body (e.g. logStartOffset for OFFSET_OUT_OF_RANGE). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'BrokerError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.details = details;
  }

  toBody(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function isBrokerError(error: unknown, code?: ErrorCode): error is BrokerError {
  return error instanceof BrokerError && (code === undefined || error.code === code);
}
