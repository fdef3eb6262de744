// Validation of path parameters and query strings, which are text. Ajv converts their numbers
// ("coerceTypes"), and its conversion is loose: " ", "0x1", "1e0", "01", "+1", "-0" and "1.0"
// all pass as integers. Before Ajv sees them, every property its schema declares an integer must
// be canonical decimal text within ±(2^53 - 1): anything else is 400 INVALID_REQUEST naming the
// field, never a different number than the one the client wrote.

import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';

/** Optional minus, then 0 or digits without a leading zero; not "-0". */
const CANONICAL_INTEGER = /^(?:0|-?[1-9][0-9]*)$/;
const SAFE_INTEGER_DIGITS = String(Number.MAX_SAFE_INTEGER);

interface PropertySchema {
  type?: unknown;
}

interface TextSchema {
  properties?: Record<string, PropertySchema>;
}

/** True for canonical decimal text of an integer of magnitude at most 2^53 - 1. */
export function isCanonicalSafeInteger(text: string): boolean {
  if (!CANONICAL_INTEGER.test(text)) return false;
  const digits = text.startsWith('-') ? text.slice(1) : text;
  if (digits.length !== SAFE_INTEGER_DIGITS.length) return digits.length < SAFE_INTEGER_DIGITS.length;
  return digits <= SAFE_INTEGER_DIGITS;
}

function integerProperties(schema: TextSchema): string[] {
  const names: string[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const type = property.type;
    if (type === 'integer' || (Array.isArray(type) && type.includes('integer'))) names.push(name);
  }
  return names;
}

/** Compiles a params or querystring schema: the canonical-integer check first, then Ajv's. */
export function compileTextValidator(ajv: Ajv, schema: object): ValidateFunction {
  const validate = ajv.compile(schema);
  const integers = integerProperties(schema as TextSchema);
  if (integers.length === 0) return validate;
  const strict = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    const errors = nonCanonical(data, integers);
    if (errors.length > 0) {
      strict.errors = errors;
      return false;
    }
    const valid = validate(data, context);
    strict.errors = validate.errors;
    return valid;
  }) as ValidateFunction;
  // Fastify passes the parent object to a function with a schemaEnv, so Ajv may coerce the root.
  Object.assign(strict, { schema: validate.schema, schemaEnv: validate.schemaEnv });
  return strict;
}

function nonCanonical(data: unknown, integers: readonly string[]): ErrorObject[] {
  const errors: ErrorObject[] = [];
  if (data === null || typeof data !== 'object') return errors;
  const values = data as Record<string, unknown>;
  for (const name of integers) {
    let value = values[name];
    // A repeated query parameter is an array; one of a single element is Ajv's to unwrap.
    if (Array.isArray(value) && value.length === 1) value = value[0];
    if (typeof value !== 'string' || isCanonicalSafeInteger(value)) continue;
    errors.push({
      instancePath: `/${name}`,
      schemaPath: `#/properties/${name}/type`,
      keyword: 'type',
      params: { type: 'integer' },
      message: `must be an integer in canonical decimal (digits and an optional leading '-'; no '+', spaces, leading zeros, fraction or exponent) within ±${SAFE_INTEGER_DIGITS}, not ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`,
    });
  }
  return errors;
}
