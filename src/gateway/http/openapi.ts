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
            failedChecks: { type: 'integer', description: 'Health checks missed in a row (absent: none); a connected ready worker leaves the rotation at the framework\'s health.downAfterFailures' },
            recentLatencyMs: { type: 'number' },
          },
        },
      },
    },
  };

  const nameParam = { name: 'name', in: 'path', required: true, description: 'Framework name (demo, lerobot, groot, pi0, ...)', schema: { type: 'string' }, example: 'demo' };
  // OpenAPI 3.1 media type objects take no `description` (the validator refuses one): what differs between the two
  // encodings is said in the request body's description instead.
  const requestBody = (dataSchema: unknown, examples: Record<string, unknown>, required: boolean) => ({
    required,
    description: 'JSON: the original envelope `{type?, data, request_id?, timeout_ms?}` or the data itself, tensors as nested lists. msgpack: the same map, tensors inline as `TensorRef` with `data` bytes.' + (required ? '' : ' An empty body is taken as `{}`.'),
    content: {
      'application/json': { schema: { oneOf: [ref('Envelope'), dataSchema] }, examples },
      'application/msgpack': { schema: { oneOf: [ref('Envelope'), dataSchema] } },
    },
  });
  // What HTTP itself refuses before a request reaches the pipeline (the code stays `bad_request`).
  const httpRefusals = {
    405: errorResponse('bad_request: the path exists but not with this method; `Allow` lists the methods it takes'),
    415: errorResponse('bad_request: a body type other than JSON or msgpack'),
  };
  const replyResponses = (resultSchema: unknown, { body = true } = {}) => ({
    200: {
      description: 'The worker answered. Encoded like the request (JSON: tensors as nested lists; msgpack: inline tensors).',
      content: {
        'application/json': { schema: { allOf: [ref('ReplyHeader'), { properties: { result: resultSchema } }] } },
        'application/msgpack': { schema: { allOf: [ref('ReplyHeader'), { properties: { result: resultSchema } }] } },
      },
    },
    400: errorResponse('bad_request: malformed body; `error.path` names what failed validation'),
    401: errorResponse('unauthorized: missing or wrong bearer token (control endpoints)'),
    404: errorResponse('unknown_framework'),
    ...(body ? { 413: errorResponse('too_large: body above the size limit') } : {}),
    ...httpRefusals,
    502: errorResponse('worker_error: the worker failed'),
    503: errorResponse('unavailable (no ready worker) or overloaded (concurrency limit; see `Retry-After`)'),
    504: errorResponse('timeout: the deadline passed'),
  });
  // The README's rule: control routes need the bearer token when one is set or the gateway listens beyond loopback.
  // Where neither holds (a loopback gateway without a token) the token is optional (`{}` = no requirement).
  const controlSecurity = controlNeedsToken ? [{ bearer: [] }] : [{ bearer: [] }, {}];
  // Inference needs an observation; train and command pass whatever they get, an empty body included.
  const op = (operationId: string, summary: string, dataSchema: unknown, resultSchema: unknown, control: boolean, examples: Record<string, unknown>) => ({
    post: {
      operationId,
      summary,
      parameters: [nameParam],
      requestBody: requestBody(dataSchema, examples, !control),
      responses: replyResponses(resultSchema),
      ...(control ? { security: controlSecurity } : {}),
    },
  });
  const jsonOk = (description: string, schema: unknown = { type: 'object' }) => ({ description, content: { 'application/json': { schema } } });
  const inferenceExamples = {
    envelope: {
      summary: 'The original envelope',
      value: { type: 'inference', request_id: 'req-1', timeout_ms: 2000, data: { state: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4] } },
    },
    bare: { summary: 'A bare observation', value: { state: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4] } },
  };
  const trainExamples = {
    envelope: { summary: 'Train ACT on a dataset for 20 000 steps on the first GPU', value: { data: { dataset: 'user/pick_cube', policy_type: 'act', output_folder_name: 'act_pick_cube', policy_device: 'cuda', steps: 20000, batch_size: 8, seed: 1000 } } },
  };
  const commandExamples = {
    envelope: { summary: 'Serve a checkpoint (a LeRobot worker: load_policy)', value: { data: { command: 'load_policy', policy_path: '/workspace/lerobot/outputs/train/act_pick_cube/checkpoints/last/pretrained_model' } } },
  };
  schemas.TrainOptions = {
    type: 'object',
    description: 'The original training options. Every bad field is listed in one bad_request.',
    properties: {
      dataset: { type: 'string', description: 'Dataset repo id (user/name), resolved in the worker\'s Hugging Face cache' },
      policy_type: { type: 'string', description: 'act, diffusion, pi0, smolvla, ...' },
      output_folder_name: { type: 'string', description: 'Folder under the training output root (default: the job id); must not exist yet' },
      policy_device: { type: 'string', description: 'cuda (= cuda:0), cuda:N, cpu or mps; default cuda. Jobs on one device queue.' },
      seed: { type: 'integer', minimum: 0 },
      num_workers: { type: 'integer', minimum: 0 },
      batch_size: { type: 'integer', minimum: 1 },
      steps: { type: 'integer', minimum: 1 },
      eval_freq: { type: 'integer', minimum: 0 },
      log_freq: { type: 'integer', minimum: 0 },
      save_freq: { type: 'integer', minimum: 1 },
      extra_args: { type: 'array', items: { type: 'string' }, description: 'More trainer arguments, each --key=value' },
    },
    required: ['dataset', 'policy_type'],
  };
  const progress = {
    type: 'object',
    properties: { step: { type: 'integer' }, total_steps: { type: 'integer' }, loss: { type: 'number' }, lr: { type: 'number' }, grad_norm: { type: 'number' }, steps_per_s: { type: ['number', 'null'] }, eta_s: { type: ['number', 'null'] } },
  };
  schemas.Job = {
    type: 'object',
    properties: {
      id: { type: 'string' },
      framework: { type: 'string' },
      state: { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
      error: { type: 'string' },
      options: { type: 'object' },
      device: { type: 'string' },
      progress,
      checkpoints: { type: 'array', items: { type: 'string' } },
      output_dir: { type: 'string' },
      endpoint: { type: 'string', description: 'The worker endpoint that runs the job (its polls and cancel go there only)' },
      cancel_requested: { type: 'boolean' },
      adopted: { type: 'boolean' },
      created_at: { type: 'number' },
      started_at: { type: 'number' },
      ended_at: { type: 'number' },
    },
    required: ['id', 'framework', 'state', 'options', 'progress', 'checkpoints'],
  };
  const idParam = { name: 'id', in: 'path', required: true, description: 'Job id (from the train reply or GET /v1/jobs)', schema: { type: 'string' } };
  const jobResponses = { 200: jsonOk('the job', ref('Job')), 401: errorResponse('unauthorized'), 404: errorResponse('bad_request: no such job') };
  schemas.LeaseStatus = {
    type: 'object',
    description: "What the gateway's lease service did for one framework with the direct path, since the gateway started",
    properties: {
      framework: { type: 'string' },
      lease_ttl_ms: { type: 'integer', description: 'Length of a lease' },
      max_in_flight: { type: 'integer', description: 'Requests in flight at once under one lease' },
      collect_interval_ms: { type: 'integer', description: "How often the gateway collects the workers' records of direct requests" },
      issued: { type: 'integer', description: 'Leases issued' },
      revocations: { type: 'integer', description: 'Revocations: on request, and each time the framework left `ready`' },
      last_revocation: {
        oneOf: [
          { type: 'null' },
          {
            type: 'object',
            properties: {
              at: { type: 'number', description: 'Seconds since the epoch; leases issued before it are refused' },
              reason: { type: 'string', description: '`operator (HTTP)`, `requested` (from code), or `framework <state>`' },
              workers: { type: 'integer' },
              failed: { type: 'integer' },
            },
            required: ['at', 'reason', 'workers', 'failed'],
          },
        ],
      },
      records: { type: 'integer', description: 'Records of direct requests collected from the workers (counted in the metrics with transport `direct`)' },
      dropped: { type: 'integer', description: 'Records the workers dropped before the gateway collected them' },
    },
    required: ['framework', 'lease_ttl_ms', 'max_in_flight', 'collect_interval_ms', 'issued', 'revocations', 'last_revocation', 'records', 'dropped'],
    examples: [{ framework: 'lerobot', lease_ttl_ms: 30000, max_in_flight: 8, collect_interval_ms: 1000, issued: 12, revocations: 1, last_revocation: { at: 1764652800.123, reason: 'operator (HTTP)', workers: 2, failed: 0 }, records: 4810, dropped: 0 }],
  };
  schemas.LeaseRevocation = {
    type: 'object',
    properties: {
      framework: { type: 'string' },
      workers: { type: 'integer', description: 'Workers that now refuse every lease issued before the revocation' },
      failed: { type: 'integer', description: 'Workers that did not answer (stopped or down): a worker refuses leases issued before its own start' },
    },
    required: ['framework', 'workers', 'failed'],
    examples: [{ framework: 'lerobot', workers: 2, failed: 0 }],
  };
  const leaseRefusals = {
    400: errorResponse('bad_request: the framework has no direct path (`frameworks.<name>.direct` in the config)'),
    401: errorResponse('unauthorized'),
    404: errorResponse('unknown_framework'),
  };
  const recordingStatus = {
    type: 'object',
    description: 'What is recorded: on/off per framework, the folder, files written and exchanges dropped',
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'physical-ai-gateway',
      version,
      description: 'Serves robot policies over HTTP and ZeroMQ. The same envelope, codecs and error codes as the ZMQ wire protocol (proto-json/v1).',
    },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/v1/frameworks/{name}/inference': op('infer', 'Run the policy on an observation; answers with an action chunk', ref('Observation'), ref('ActionChunk'), false, inferenceExamples),
      '/v1/frameworks/{name}/train': op('train', 'Start a training job in the framework\'s worker; answers at once with the job (queued, running, or failed with the reason). A framework without `training: true` in the config gets the request as it is, and its worker\'s answer comes back', ref('TrainOptions'), { anyOf: [ref('Job'), { type: 'object', description: 'the worker\'s own answer (a framework without jobs)' }] }, true, trainExamples),
      '/v1/frameworks/{name}/command': op('command', 'Pass a command to the framework (LeRobot: load_policy serves a checkpoint)', { type: 'object' }, {}, true, commandExamples),
      '/v1/jobs': {
        get: { operationId: 'listJobs', summary: 'Every training job this gateway knows (started here or found running in a worker)', security: controlSecurity, responses: { 200: jsonOk('the jobs', { type: 'object', properties: { jobs: { type: 'array', items: ref('Job') } } }), 401: errorResponse('unauthorized') } },
      },
      '/v1/jobs/{id}': { get: { operationId: 'getJob', summary: 'One training job', parameters: [idParam], security: controlSecurity, responses: jobResponses } },
      '/v1/jobs/{id}/cancel': {
        post: { operationId: 'cancelJob', summary: 'Cancel a job: a queued one at once, a running one stops at its next step (killed after the grace period)', parameters: [idParam], security: controlSecurity, responses: { ...jobResponses, 502: errorResponse('worker_error'), 503: errorResponse('unavailable: the worker does not answer') } },
      },
      '/v1/jobs/{id}/events': {
        get: {
          operationId: 'jobEvents',
          summary: 'Server-sent events: `state` (the job) first and on every change, `progress` per reported step (step, loss, lr, steps_per_s, eta_s), `checkpoint` per checkpoint; ends after a final state',
          parameters: [idParam],
          security: controlSecurity,
          responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 401: errorResponse('unauthorized'), 404: errorResponse('bad_request: no such job') },
        },
      },
      // health and status take POST too (the original client's envelope, like inference); the body is not needed.
      '/v1/frameworks/{name}/health': {
        get: { operationId: 'getFrameworkHealth', summary: "Ask the framework's worker whether it is ready", parameters: [nameParam], responses: replyResponses(ref('HealthResult'), { body: false }) },
        post: { operationId: 'postFrameworkHealth', summary: 'The same as GET, for clients that POST an envelope', parameters: [nameParam], requestBody: requestBody({ type: 'object' }, { envelope: { summary: 'The original envelope', value: { type: 'health', data: {} } } }, false), responses: replyResponses(ref('HealthResult')) },
      },
      '/v1/frameworks/{name}/status': {
        get: { operationId: 'getFrameworkWorkerStatus', summary: "Ask the framework's worker for its status (passed to the worker)", parameters: [nameParam], responses: replyResponses({}, { body: false }) },
        post: { operationId: 'postFrameworkWorkerStatus', summary: 'The same as GET, for clients that POST an envelope', parameters: [nameParam], requestBody: requestBody({ type: 'object' }, { envelope: { summary: 'The original envelope', value: { type: 'status', data: {} } } }, false), responses: replyResponses({}) },
      },
      '/v1/frameworks': {
        get: {
          operationId: 'listFrameworks',
          summary: 'Every configured framework: endpoints, state, health, requests in flight, recent latency',
          responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object', properties: { default: { type: 'string' }, frameworks: { type: 'array', items: ref('FrameworkStatus') } } } } } } },
        },
      },
      '/v1/frameworks/{name}': {
        get: { operationId: 'getFramework', summary: 'One framework', parameters: [nameParam], responses: { 200: { description: 'ok', content: { 'application/json': { schema: ref('FrameworkStatus') } } }, 404: errorResponse('unknown_framework'), 405: httpRefusals[405] } },
      },
      // Container control (frameworks with a launcher, e.g. Docker): always behind the bearer token rule.
      '/v1/frameworks/{name}/start': {
        post: {
          operationId: 'startFramework',
          summary: 'Start the framework (its container) and wait until its worker is ready; `timeout_ms` in the query or a JSON body',
          parameters: [nameParam, { name: 'timeout_ms', in: 'query', required: false, schema: { type: 'integer', minimum: 1 }, example: 60000 }],
          requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { timeout_ms: { type: 'integer', minimum: 1 } } }, example: { timeout_ms: 60000 } } } },
          security: controlSecurity,
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
          operationId: 'stopFramework',
          summary: "Stop the framework's container (stopping a stopped one is not an error)",
          parameters: [nameParam],
          requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { timeout_ms: { type: 'integer', minimum: 1 } } }, example: { timeout_ms: 30000 } } } },
          security: controlSecurity,
          responses: { 200: { description: 'stopped' }, 401: errorResponse('unauthorized'), 404: errorResponse('unknown_framework'), 503: errorResponse('unavailable: Docker not reachable') },
        },
      },
      // The direct path's leases: behind the bearer token rule like the container control.
      '/v1/frameworks/{name}/leases': {
        get: {
          operationId: 'getLeases',
          summary: "The lease service's counts for a framework with the direct path: leases issued, revocations and the last one, records of direct requests collected",
          parameters: [nameParam],
          security: controlSecurity,
          responses: { 200: jsonOk('the counts', ref('LeaseStatus')), ...leaseRefusals },
        },
      },
      '/v1/frameworks/{name}/leases/revoke': {
        post: {
          operationId: 'revokeLeases',
          summary: "Revoke every lease of the framework issued before now: each of its workers refuses them (`unauthorized`) and clients take new leases from the gateway. For a misbehaving client or a rotated worker secret. No body",
          parameters: [nameParam],
          security: controlSecurity,
          responses: { 200: jsonOk('revoked: workers that acknowledged, workers that did not answer', ref('LeaseRevocation')), ...leaseRefusals },
        },
      },
      '/v1/containers': {
        get: {
          operationId: 'listContainers',
          summary: "The gateway's labelled containers: framework, state, health, image, endpoint, memory limit, last stats",
          security: controlSecurity,
          responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errorResponse('unauthorized'), 503: errorResponse('unavailable: Docker not reachable') },
        },
      },
      '/v1/recording': {
        get: {
          operationId: 'getRecording',
          summary: 'What is recorded to MCAP files now',
          security: controlSecurity,
          responses: { 200: jsonOk('the recording status', recordingStatus), 401: errorResponse('unauthorized') },
        },
        post: {
          operationId: 'setRecording',
          summary: 'Switch recording on or off, for every framework or the ones listed',
          security: controlSecurity,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', properties: { on: { type: 'boolean' }, frameworks: { type: 'array', items: { type: 'string' } } }, required: ['on'], additionalProperties: false },
                examples: { all: { summary: 'Record every framework', value: { on: true } }, one: { summary: 'Record demo only', value: { on: true, frameworks: ['demo'] } } },
              },
            },
          },
          responses: {
            200: jsonOk('the recording status after the switch', recordingStatus),
            400: errorResponse('bad_request: not `{on, frameworks?}`; `error.path` names the field'),
            401: errorResponse('unauthorized'),
            404: errorResponse('unknown_framework: a listed framework is not served here'),
            413: errorResponse('too_large: the body is above 4096 bytes'),
          },
        },
      },
      '/healthz': { get: { operationId: 'getLiveness', summary: 'The gateway process is alive', responses: { 200: jsonOk('alive', { type: 'object', properties: { status: { const: 'ok' } } }) } } },
      '/readyz': {
        get: {
          operationId: 'getReadiness',
          summary: 'Every configured framework has a ready worker (frameworks started on demand count once started)',
          responses: { 200: { description: 'ready' }, 503: { description: 'not ready; the body lists which frameworks are not' } },
        },
      },
      '/metrics': { get: { operationId: 'getMetrics', summary: 'Prometheus metrics (when telemetry is enabled)', responses: { 200: { description: 'text exposition format' }, 404: { description: 'metrics not enabled' } } } },
      '/openapi.json': { get: { operationId: 'getOpenApi', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { operationId: 'getDocs', summary: 'A self-contained HTML page rendering this document', responses: { 200: { description: 'text/html' } } } },
    },
  };
}
