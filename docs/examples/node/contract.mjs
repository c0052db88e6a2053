// The published contract, from Node.js: the JSON Schema of each event's envelope, as written
// to docs/schemas/ by `make docs` (one file per routing key), checked with Ajv.
//
// Copy docs/schemas/ beside your code, or point SCHEMAS_DIR at it.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const SCHEMAS_DIR =
  process.env.SCHEMAS_DIR ?? fileURLToPath(new URL("../../schemas/", import.meta.url));

// allErrors: say everything that is wrong at once. The schemas are JSON Schema 2020-12; their
// formats (uuid, date-time with a time zone) need ajv-formats.
const ajv = new Ajv2020({ allErrors: true });
addFormats(ajv);

const validators = new Map();

/** The Ajv validator of the envelope published on `routingKey`, e.g. "user.created.v1". */
export function validatorFor(routingKey) {
  let validate = validators.get(routingKey);
  if (validate === undefined) {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, `${routingKey}.json`), "utf8"));
    validate = ajv.compile(schema);
    validators.set(routingKey, validate);
  }
  return validate;
}

export class InvalidEvent extends Error {}

/** Throws InvalidEvent, saying every problem, unless `envelope` matches the schema. */
export function check(routingKey, envelope) {
  const validate = validatorFor(routingKey);
  if (!validate(envelope)) {
    const problems = ajv.errorsText(validate.errors, { dataVar: "envelope", separator: "; " });
    throw new InvalidEvent(`not a valid ${routingKey} envelope: ${problems}`);
  }
  return envelope;
}
