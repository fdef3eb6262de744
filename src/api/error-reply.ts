// Every failure answers with the contract's error body: a coded BrokerError, whatever was thrown.

import type { FastifyError, FastifyReply } from 'fastify';
import { BrokerError } from '../broker/errors.js';
import { RETRY_AFTER_SECONDS } from '../wire/errors.js';
import { MAX_REQUEST_BYTES } from '../wire/types.js';

export function sendError(reply: FastifyReply, error: BrokerError): FastifyReply {
  if (error.statusCode === 503 || error.statusCode === 507 || error.statusCode === 429) {
    reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  }
  return reply.code(error.statusCode).type('application/json').send(JSON.stringify(error.toBody()));
}

/** Maps whatever was thrown to a coded error of the contract. */
export function toBrokerError(error: FastifyError | Error): BrokerError {
  if (error instanceof BrokerError) return error;
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_VALIDATION':
      return new BrokerError('INVALID_REQUEST', fastifyError.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BrokerError(
        'REQUEST_TOO_LARGE',
        `the request body is over maxRequestBytes (${MAX_REQUEST_BYTES})`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BrokerError(
        'UNSUPPORTED_MEDIA_TYPE',
        'the body must be JSON (content-type: application/json)',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BrokerError('INVALID_REQUEST', 'the JSON body is empty');
    default:
      if (fastifyError.statusCode === 400) return new BrokerError('INVALID_REQUEST', fastifyError.message);
      return new BrokerError('INTERNAL', `internal error: ${fastifyError.message}`);
  }
}
