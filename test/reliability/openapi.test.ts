// The OpenAPI document as a client generator or a reader meets it: valid OpenAPI 3.1 by @readme/openapi-parser
// (a real validator: the official 3.1 JSON schema plus the spec's own rules), every operation named and every
// request body with an example, the control routes under the bearer rule, and /docs turning the descriptions'
// markdown code spans into <code> instead of showing backticks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '@readme/openapi-parser';
import { buildOpenApi } from '../../src/gateway/http/openapi.js';
import { DOCS_HTML, renderInline } from '../../src/gateway/http/docs-page.js';
import { startTestGateway } from '../support/gateway.js';

type Operation = { operationId?: string; security?: Record<string, unknown>[]; requestBody?: { content: Record<string, { example?: unknown; examples?: unknown }> }; responses: Record<string, { description?: string }>; summary?: string };
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

function operations(doc: Record<string, unknown>): [string, string, Operation][] {
  const out: [string, string, Operation][] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, op] of Object.entries(item)) if (METHODS.includes(method)) out.push([path, method, op]);
  }
  return out;
}

test('GET /openapi.json is valid OpenAPI 3.1, with and without a token rule', async (t) => {
  const gateway = await startTestGateway(t);
  const served = (await (await fetch(`${gateway.httpUrl}/openapi.json`)).json()) as Record<string, unknown>;
  for (const doc of [served, buildOpenApi({ controlNeedsToken: true })]) {
    const result = await validate(structuredClone(doc) as never);
    assert.deepEqual(result.valid ? [] : result.errors.map((e) => e.message), []);
    assert.equal(result.valid, true);
    assert.equal(doc.openapi, '3.1.0');
  }
});

test('every operation has a unique operationId, every request body an example, and the documented refusals', () => {
  const doc = buildOpenApi();
  const ops = operations(doc);
  assert.ok(ops.length >= 17, `only ${ops.length} operations`);
  const ids = ops.map(([path, method, op]) => op.operationId ?? `${method} ${path}: none`);
  assert.deepEqual(ids.filter((id) => id.includes(': none')), []);
  assert.equal(new Set(ids).size, ids.length);
  for (const [path, method, op] of ops) {
    if (!op.requestBody) continue;
    const json = op.requestBody.content['application/json'];
    assert.ok(json && (json.example !== undefined || json.examples !== undefined), `${method} ${path} has no JSON request example`);
  }
  for (const type of ['inference', 'train', 'command']) {
    const responses = (doc.paths as Record<string, Record<string, Operation>>)[`/v1/frameworks/{name}/${type}`]!.post!.responses;
    for (const status of ['400', '404', '405', '413', '415', '503', '504']) assert.ok(responses[status], `${type} lacks ${status}`);
  }
  assert.ok((doc.paths as Record<string, Record<string, Operation>>)['/v1/recording']?.post, '/v1/recording is documented');
});

test('train, command and the control routes declare the bearer requirement; inference does not', () => {
  const control = ['train', 'command', 'start', 'stop'].map((type) => ['post', `/v1/frameworks/{name}/${type}`] as const);
  const more = [['get', '/v1/containers'], ['get', '/v1/recording'], ['post', '/v1/recording'], ['get', '/v1/frameworks/{name}/leases'], ['post', '/v1/frameworks/{name}/leases/revoke']] as const;
  for (const needsToken of [true, false]) {
    const doc = buildOpenApi({ controlNeedsToken: needsToken });
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    for (const [method, path] of [...control, ...more]) {
      const security = paths[path]![method]!.security ?? [];
      assert.ok(security?.some((s) => 'bearer' in s), `${method} ${path} declares bearer`);
      // Without a token rule (loopback, no token) the token is optional: `{}` says so.
      assert.equal(security.some((s) => Object.keys(s).length === 0), !needsToken, `${method} ${path} optional=${!needsToken}`);
    }
    assert.equal(paths['/v1/frameworks/{name}/inference']!.post!.security, undefined);
    assert.deepEqual((doc.components as { securitySchemes: unknown }).securitySchemes, { bearer: { type: 'http', scheme: 'bearer' } });
  }
});

test('/docs renders markdown code spans as <code>, never as literal backticks', async (t) => {
  const gateway = await startTestGateway(t);
  const html = await (await fetch(`${gateway.httpUrl}/docs`)).text();
  assert.equal(html, DOCS_HTML);
  // The page runs this very function (its source is inlined), on every description it shows.
  assert.ok(html.includes(renderInline.toString()), 'the page inlines renderInline');
  assert.equal(renderInline('the envelope `{type?, data}` and `a<b>`'), 'the envelope <code>{type?, data}</code> and <code>a&lt;b&gt;</code>');
  const doc = buildOpenApi();
  const texts: string[] = [String((doc.info as { description: string }).description)];
  for (const [, , op] of operations(doc)) {
    texts.push(op.summary ?? '');
    for (const r of Object.values(op.responses)) texts.push(r.description ?? '');
  }
  for (const s of Object.values((doc.components as { schemas: Record<string, { description?: string }> }).schemas)) texts.push(s.description ?? '');
  assert.ok(texts.some((s) => s.includes('`')), 'the document has code spans to render');
  for (const text of texts) assert.ok(!renderInline(text).includes('`'), `backtick left in: ${renderInline(text)}`);
});
