// The OpenAPI 3.1 document of the HTTP API, built from the proto-json/v1 schemas (the same ones the codecs
// validate against), so the docs cannot drift from the wire protocol.
import { loadSchemas, type JsonSchema, type SchemaName } from '../../protocol/schemas.js';

const COMPONENT_NAMES: Record<SchemaName, string> = {
  tensor: 'TensorRef',
  error: 'WireError',
  request: 'RequestHeader',
  reply: 'ReplyHeader',
  observation: 'Observation',
  'action-chunk': 'ActionChunk',
  health: 'HealthResult',
};
const FILE_TO_COMPONENT: Record<string, string> = Object.fromEntries(
  Object.entries(COMPONENT_NAMES).map(([name, component]) => [`${name}.schema.json`, component]),
);

/** Rewrites draft-07 file refs and local definitions into #/components/schemas refs. */
function rewrite(value: unknown, owner: string, out: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, owner, out));
  if (value === null || typeof value !== 'object') return value;
  const obj: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$schema' || key === '$id') continue;
    if (key === 'definitions' && v && typeof v === 'object') {
      for (const [defName, def] of Object.entries(v)) out[`${owner}_${defName}`] = rewrite(def, owner, out);
      continue;
    }
    if (key === '$ref' && typeof v === 'string') {
      if (v.startsWith('#/definitions/')) obj.$ref = `#/components/schemas/${owner}_${v.slice('#/definitions/'.length)}`;
      else if (FILE_TO_COMPONENT[v]) obj.$ref = `#/components/schemas/${FILE_TO_COMPONENT[v]}`;
      else obj.$ref = v;
      continue;
    }
    obj[key] = rewrite(v, owner, out);
  }
  return obj;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('ErrorBody') } },
});

export interface OpenApiOptions {
  version?: string;
  /** Whether control endpoints (train, command) need a bearer token on this gateway. */
  controlNeedsToken?: boolean;
}

export function buildOpenApi({ version = '0.1.0', controlNeedsToken = false }: OpenApiOptions = {}): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  const raw = loadSchemas();
  for (const [name, schema] of Object.entries(raw) as [SchemaName, JsonSchema][]) {
    schemas[COMPONENT_NAMES[name]] = rewrite(schema, COMPONENT_NAMES[name], schemas);
  }
  schemas.ErrorBody = {
    type: 'object',
    properties: { error: { allOf: [ref('WireError')], description: 'Always carries request_id; path only for validation errors' } },
    required: ['error'],
  };
  schemas.Envelope = {
    type: 'object',
    description: 'The original ROBOTIS envelope. `type` defaults to the one in the path; a body without `data` is taken as the data itself (a bare observation). For inference, `data.observation` (the original client\'s `{observation, **kwargs}`) and the original example keys are mapped to the standard observation: `image` → `images.image` (uint8), `robot_state` → `state` (float32); other keys pass through.',
    properties: {
      type: { type: 'string' },
      data: {},
      request_id: { type: 'string' },
      timeout_ms: { type: 'number', exclusiveMinimum: 0 },
      traceparent: { type: 'string' },
    },
    required: ['data'],
  };
  schemas.FrameworkStatus = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      default: { type: 'boolean' },
      state: { enum: ['ready', 'starting', 'stopped', 'down'] },
      ready: { type: 'boolean' },
      inFlight: { type: 'integer' },
      maxConcurrency: { type: 'integer' },
      timeoutMs: { type: 'integer' },
      recentLatencyMs: { type: 'number' },
      launcher: { type: 'boolean' },
      requests: { type: 'object', properties: { ok: { type: 'integer' }, errors: { type: 'integer' }, overloaded: { type: 'integer' } } },
      endpoints: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            endpoint: { type: 'string' },
            state: { enum: ['connecting', 'ready', 'unhealthy', 'down', 'removed'] },
            inFlight: { type: 'integer' },
            lastHealth: ref('HealthResult'),
            lastError: { type: 'string' },
            recentLatencyMs: { type: 'number' },
          },
        },
      },
    },
  };

  const nameParam = { name: 'name', in: 'path', required: true, description: 'Framework name (demo, lerobot, groot, pi0, ...)', schema: { type: 'string' } };
  const requestBody = (dataSchema: unknown) => ({
    required: true,
    content: {
      'application/json': { schema: { oneOf: [ref('Envelope'), dataSchema] } },
      'application/msgpack': { schema: { oneOf: [ref('Envelope'), dataSchema] }, description: 'msgpack map; tensors inline as TensorRef with `data` bytes' },
    },
  });
  const replyResponses = (resultSchema: unknown) => ({
    200: {
      description: 'The worker answered. Encoded like the request (JSON: tensors as nested lists; msgpack: inline tensors).',
      content: {
        'application/json': { schema: { allOf: [ref('ReplyHeader'), { properties: { result: resultSchema } }] } },
        'application/msgpack': { schema: { allOf: [ref('ReplyHeader'), { properties: { result: resultSchema } }] } },
      },
    },
    400: errorResponse('bad_request: malformed body; error.path names what failed validation'),
    401: errorResponse('unauthorized: missing or wrong bearer token (control endpoints)'),
    404: errorResponse('unknown_framework'),
    413: errorResponse('too_large: body above the size limit'),
    502: errorResponse('worker_error: the worker failed'),
    503: errorResponse('unavailable (no ready worker) or overloaded (concurrency limit; see Retry-After)'),
    504: errorResponse('timeout: the deadline passed'),
  });
  const security = controlNeedsToken ? [{ bearer: [] }] : [];
  const op = (summary: string, dataSchema: unknown, resultSchema: unknown, control: boolean) => ({
    post: {
      summary,
      parameters: [nameParam],
      requestBody: requestBody(dataSchema),
      responses: replyResponses(resultSchema),
      ...(control ? { security } : {}),
    },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'physical-ai-gateway',
      version,
      description: 'Serves robot policies over HTTP and ZeroMQ. The same envelope, codecs and error codes as the ZMQ wire protocol (proto-json/v1).',
    },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/v1/frameworks/{name}/inference': op('Run the policy on an observation; answers with an action chunk', ref('Observation'), ref('ActionChunk'), false),
      '/v1/frameworks/{name}/train': op('Pass a training request to the framework', { type: 'object' }, {}, true),
      '/v1/frameworks/{name}/command': op('Pass a command to the framework', { type: 'object' }, {}, true),
      '/v1/frameworks/{name}/health': {
        get: { summary: "Ask the framework's worker whether it is ready", parameters: [nameParam], responses: replyResponses(ref('HealthResult')) },
      },
      '/v1/frameworks': {
        get: {
          summary: 'Every configured framework: endpoints, state, health, requests in flight, recent latency',
          responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object', properties: { default: { type: 'string' }, frameworks: { type: 'array', items: ref('FrameworkStatus') } } } } } } },
        },
      },
      '/v1/frameworks/{name}': {
        get: { summary: 'One framework', parameters: [nameParam], responses: { 200: { description: 'ok', content: { 'application/json': { schema: ref('FrameworkStatus') } } }, 404: errorResponse('unknown_framework') } },
      },
      // Container control (frameworks with a launcher, e.g. Docker): always behind the bearer token rule.
      '/v1/frameworks/{name}/start': {
        post: {
          summary: 'Start the framework (its container) and wait until its worker is ready; timeout_ms in the query or a JSON body',
          parameters: [nameParam, { name: 'timeout_ms', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } }],
          security: [{ bearer: [] }],
          responses: {
            200: { description: 'ready: framework, state, endpoints, container, image, time taken', content: { 'application/json': { schema: { type: 'object' } } } },
            400: errorResponse('bad_request: bad timeout_ms'),
            401: errorResponse('unauthorized'),
            404: errorResponse('unknown_framework, or a framework without a launcher'),
            503: errorResponse('unavailable: Docker not reachable, image missing (the message says how to build it)'),
            504: errorResponse('timeout: not ready within the deadline (the start goes on)'),
          },
        },
      },
      '/v1/frameworks/{name}/stop': {
        post: {
          summary: "Stop the framework's container (stopping a stopped one is not an error)",
          parameters: [nameParam],
          security: [{ bearer: [] }],
          responses: { 200: { description: 'stopped' }, 401: errorResponse('unauthorized'), 404: errorResponse('unknown_framework'), 503: errorResponse('unavailable: Docker not reachable') },
        },
      },
      '/v1/containers': {
        get: {
          summary: "The gateway's labelled containers: framework, state, health, image, endpoint, memory limit, last stats",
          security: [{ bearer: [] }],
          responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errorResponse('unauthorized'), 503: errorResponse('unavailable: Docker not reachable') },
        },
      },
      '/healthz': { get: { summary: 'The gateway process is alive', responses: { 200: { description: 'alive' } } } },
      '/readyz': {
        get: {
          summary: 'Every configured framework has a ready worker (frameworks started on demand count once started)',
          responses: { 200: { description: 'ready' }, 503: { description: 'not ready; the body lists which frameworks are not' } },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics (when telemetry is enabled)', responses: { 200: { description: 'text exposition format' }, 404: { description: 'metrics not enabled' } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { summary: 'A self-contained HTML page rendering this document', responses: { 200: { description: 'text/html' } } } },
    },
  };
}
