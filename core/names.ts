/**
 * Sibyl's one vocabulary of names: how model names, versions, aliases, cells, bundle hashes and the identifiers of
 * composed rules are spelled, each pattern with the message a refused value gets. Every part imports these; no part
 * writes its own copy (test/core/names.test.ts fails on one), so the gateway, the tower, the manifest and the CLI
 * cannot drift apart.
 */
import { z } from 'zod';

/** A pattern and what a value must be to match it, worded to follow a field name: `name ${NAME.message}`. */
export interface NameRule {
  readonly pattern: RegExp;
  readonly message: string;
}

function rule(pattern: RegExp, message: string): NameRule {
  return Object.freeze({ pattern, message });
}

/**
 * A model's name. The manifest names its features, entities and outputs the same way (they become hash keys,
 * label values and JSON keys, so lowercase and no spaces). It starts and ends with a letter or digit and has no
 * "..": `delivery-eta.`, `delivery-eta_` or `delivery..eta` would be a second model that reads like the first.
 */
export const NAME = rule(
  /^(?!.*\.\.)[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/,
  'must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting and ending with a letter or digit, without ".."',
);

/**
 * A model's version: case matters ("v2" and "V2" are two versions), and like a name it starts and ends with a
 * letter or digit and has no "..". A split arm defaults to its version, so it is spelled the same.
 */
export const VERSION = rule(
  /^(?!.*\.\.)[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
  'must be 1-63 characters of A-Z, a-z, 0-9, ".", "_" or "-", starting and ending with a letter or digit, without ".."',
);

/** An alias stands where a version does (a request names either), so it is spelled like one; the tower refuses an alias that is also a version. */
export const ALIAS: NameRule = VERSION;

/**
 * A cell: a DNS label (RFC 1123), 1-63 characters of a-z, 0-9 or "-", starting and ending with a letter or digit.
 * Cells become Kubernetes namespaces and label values, so nothing looser may be accepted anywhere.
 */
export const CELL = rule(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: 1-63 characters of a-z, 0-9 or "-", starting and ending with a letter or digit');

/** A bundle's sha256 as the tower and the gateways name it: 64 lowercase hex digits (also what keeps it safe as a file name). */
export const SHA256_HEX = rule(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** The `as` of a model a rule composes: an identifier, so a rule can write `ctx.models.fast`. */
export const IDENTIFIER = rule(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be an identifier: 1-63 characters of A-Z, a-z, 0-9 or "_", not starting with a digit');

/**
 * A request id a caller gives in its message (a header's is a header value already): the gateway sends it back in
 * the answer's `x-request-id` header or gRPC trailer, keys the prediction log's Kafka records with it and writes it
 * to the access log, so it must be something every one of those carries as it is.
 */
export const REQUEST_ID = rule(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 visible ASCII characters (no spaces, no control characters)');

export const isName = (value: string): boolean => NAME.pattern.test(value);
export const isVersion = (value: string): boolean => VERSION.pattern.test(value);
export const isAlias = (value: string): boolean => ALIAS.pattern.test(value);
export const isCellName = (value: string): boolean => CELL.pattern.test(value);
export const isSha256 = (value: string): boolean => SHA256_HEX.pattern.test(value);
export const isRequestId = (value: string): boolean => REQUEST_ID.pattern.test(value);

/** A zod string schema for a rule, refusing with the rule's message (or `message`, worded for the field). */
export function nameSchema(r: NameRule, message: string = r.message): z.ZodString {
  return z.string().regex(r.pattern, message);
}
