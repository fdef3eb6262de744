// Every error code of the client contract with its HTTP status, in one place, shared by the
// broker, the HTTP API and the SDK. Responses carry {"error": {"code", "message", ...extra}};
// a test checks that each code is documented in docs/api.md.

export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  INVALID_TOPIC_NAME: 400,
  INVALID_REPLICATION_FACTOR: 400,
  UNKNOWN_TOPIC: 404,
  UNKNOWN_PARTITION: 404,
  NOT_FOUND: 404,
  UNKNOWN_MEMBER: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  TOPIC_EXISTS: 409,
  OUT_OF_ORDER_SEQUENCE: 409,
  PRODUCER_FENCED: 409,
  UNKNOWN_PRODUCER: 409,
  STALE_GENERATION: 409,
  RECORD_TOO_LARGE: 413,
  REQUEST_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OFFSET_OUT_OF_RANGE: 416,
  THROTTLED: 429,
  HEADERS_TOO_LARGE: 431,
  NO_LEADER: 503,
  NOT_ENOUGH_REPLICAS: 503,
  BUSY: 503,
  DISK_FULL: 507,
  MEMORY_FULL: 507,
  NOT_READY: 503,
  TIMEOUT: 504,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Seconds a client should wait before retrying a 503, a 507 or a 429. */
export const RETRY_AFTER_SECONDS = 1;
