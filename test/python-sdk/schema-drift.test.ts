// The Python SDK's protocol constants must equal proto-json/v1 (and the TypeScript side's), so a schema change
// that the SDK does not follow fails here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { DEFAULT_LIMITS, MAX_DEPTH_CEILING } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { loadSchemas, type JsonSchema } from '../../src/protocol/schemas.js';
import { DTYPES, MAX_RANK } from '../../src/protocol/tensor.js';
import { ERROR_CODES, GatewayError } from '../../src/lib/errors.js';
import { PYTHON, SDK_DIR } from '../support/python-worker.js';

interface SdkConstants {
  protocol_version: number;
  sdk: string;
  dtypes: string[];
  max_rank: number;
  tensor_key: string;
  error_codes: string[];
  retryable_codes: string[];
  reply_statuses: string[];
  fields: Record<string, string[]>;
  limits: { max_message_bytes: number; max_frames: number; max_header_bytes: number; max_depth: number; max_depth_ceiling: number };
  request: {
    max_type_length: number;
    max_request_id_length: number;
    max_framework_length: number;
    traceparent_pattern: string;
    supported_versions: number[];
    max_timeout_ms: number;
  };
}

async function sdkConstants(): Promise<SdkConstants> {
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', 'import json; from physical_ai_worker.protocol import constants; print(json.dumps(constants()))'], {
    env: { ...process.env, PYTHONPATH: SDK_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as SdkConstants;
}

const props = (schema: JsonSchema | Record<string, unknown>) => Object.keys((schema as { properties: Record<string, unknown> }).properties).sort();
const sorted = (xs: readonly string[]) => [...xs].sort();
type Schema = Record<string, any>;

test('the Python SDK constants match proto-json/v1 and the TypeScript protocol', async () => {
  const sdk = await sdkConstants();
  const s = loadSchemas() as unknown as Record<string, Schema>;

  assert.deepEqual(sdk.dtypes, s.tensor!.definitions.dtype.enum, 'dtypes (tensor.schema.json)');
  assert.deepEqual(sdk.dtypes, [...DTYPES]);
  assert.equal(sdk.max_rank, s.tensor!.properties.shape.maxItems);
  assert.equal(sdk.max_rank, MAX_RANK);
  assert.deepEqual(sdk.error_codes, s.error!.properties.code.enum, 'error codes (error.schema.json)');
  assert.deepEqual(sdk.error_codes, [...ERROR_CODES]);
  assert.deepEqual(sdk.retryable_codes, sorted(ERROR_CODES.filter((c) => new GatewayError(c, '').retryable)));
  assert.deepEqual(sdk.reply_statuses, s.reply!.properties.status.enum);
  assert.equal(sdk.protocol_version, PROTOCOL_VERSION);
  assert.equal(sdk.tensor_key, '__tensor__');
  assert.ok(Object.hasOwn(s.tensor!.properties, sdk.tensor_key));

  const fieldSources: Record<string, Schema> = {
    request: s.request!,
    reply: s.reply!,
    timing: s.reply!.definitions.timing,
    error: s.error!,
    health: s.health!,
    tensor: s.tensor!,
    observation: s.observation!,
    'action-chunk': s['action-chunk']!,
  };
  assert.deepEqual(Object.keys(sdk.fields).sort(), Object.keys(fieldSources).sort());
  for (const [name, schema] of Object.entries(fieldSources)) {
    assert.deepEqual(sorted(sdk.fields[name]!), props(schema), `fields of ${name}`);
  }

  assert.deepEqual(sdk.limits, {
    max_message_bytes: DEFAULT_LIMITS.maxMessageBytes,
    max_frames: DEFAULT_LIMITS.maxFrames,
    max_header_bytes: DEFAULT_LIMITS.maxHeaderBytes,
    max_depth: DEFAULT_LIMITS.maxDepth,
    max_depth_ceiling: MAX_DEPTH_CEILING,
  });
  const req = s.request!.properties;
  assert.equal(sdk.request.max_type_length, req.type.maxLength);
  assert.equal(sdk.request.max_request_id_length, req.request_id.maxLength);
  assert.equal(sdk.request.max_framework_length, req.framework.maxLength);
  assert.equal(sdk.request.traceparent_pattern, req.traceparent.pattern);
  assert.deepEqual(sdk.request.supported_versions, req.version.enum, 'protocol versions (request.schema.json version.enum)');
  assert.equal(sdk.request.max_timeout_ms, req.timeout_ms.maximum);
  assert.match(sdk.sdk, /^physical-ai-gateway-py\/\d+\.\d+\.\d+$/);
});
