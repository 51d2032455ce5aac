// Loads proto-json/v1 once and compiles validators; validation errors name the failing path.
import { readFileSync } from 'node:fs';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { GatewayError } from '../lib/errors.js';

const Ajv = AjvModule.default ?? AjvModule;

export const SCHEMA_DIR = new URL('../../proto-json/v1/', import.meta.url);
export const SCHEMA_NAMES = ['tensor', 'error', 'request', 'reply', 'observation', 'action-chunk', 'health'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

export type JsonSchema = { $id: string; properties?: Record<string, unknown>; [key: string]: unknown };

/** Every schema of proto-json/v1 by name, parsed. */
export function loadSchemas(): Record<SchemaName, JsonSchema> {
  const out = {} as Record<SchemaName, JsonSchema>;
  for (const name of SCHEMA_NAMES) out[name] = JSON.parse(readFileSync(new URL(`${name}.schema.json`, SCHEMA_DIR), 'utf8')) as JsonSchema;
  return out;
}

let validators: Record<SchemaName, ValidateFunction> | undefined;

function compiled(): Record<SchemaName, ValidateFunction> {
  if (validators) return validators;
  const schemas = loadSchemas();
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const name of SCHEMA_NAMES) ajv.addSchema(schemas[name]);
  const out = {} as Record<SchemaName, ValidateFunction>;
  for (const name of SCHEMA_NAMES) out[name] = ajv.getSchema(schemas[name].$id)!;
  return (validators = out);
}

function describeOne(e: ErrorObject, root: string): string {
  const path = root + e.instancePath || '/';
  if (e.keyword === 'required') return `${path}: missing required field '${(e.params as { missingProperty: string }).missingProperty}'`;
  if (e.keyword === 'enum') return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${path}: ${e.message ?? 'invalid'}`;
}

function describe(errors: ErrorObject[] | null | undefined, root: string): { path: string; message: string } {
  const first = errors?.[0];
  if (!first) return { path: root || '/', message: 'invalid' };
  const texts = [...new Set((errors ?? []).map((e) => describeOne(e, root)))].slice(0, 5);
  return { path: root + first.instancePath || '/', message: texts.join('; ') };
}

/** Throws `bad_request` naming the failing path when `value` does not match the schema. */
export function validate(name: SchemaName, value: unknown, root = ''): void {
  const fn = compiled()[name];
  if (fn(value)) return;
  const { path, message } = describe(fn.errors, root);
  throw new GatewayError('bad_request', `invalid ${name}: ${message}`, { path });
}

/** True when `value` matches the schema. */
export function isValid(name: SchemaName, value: unknown): boolean {
  return compiled()[name](value) as boolean;
}
