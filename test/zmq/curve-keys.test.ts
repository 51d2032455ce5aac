// Key files are read strictly (a bad file is named with its line), Z85 matches RFC 32, and the process's ZAP handler
// keeps each server's allow list to that server: two doors in one process, and one without a list, side by side.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger, silentLogger } from '../../src/lib/log.js';
import { DEFAULT_LIMITS, encodeMessage, peekRequestId } from '../../src/protocol/codec.js';
import { curvePublicKeyOf, formatCertificate, generateCurveKeyPair, parseCertificate, z85Decode, z85Encode, type CurveKeyPair } from '../../src/zmq/curve-keys.js';
import { RouterServer } from '../../src/zmq/router-server.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';

describe('CURVE key files', () => {
  test('Z85 round-trips the RFC 32 test vector, and the public key derives from the secret', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    assert.equal(z85Encode(bytes), 'HelloWorld');
    assert.deepEqual(z85Decode('HelloWorld'), bytes);
    const pair = generateCurveKeyPair();
    assert.equal(curvePublicKeyOf(pair.secretKey), pair.publicKey);
  });

  test('a written file parses back; public-only files have no secret', () => {
    const pair = generateCurveKeyPair();
    assert.deepEqual(parseCertificate(formatCertificate(pair, 'a'), 'a.key'), pair);
    assert.deepEqual(parseCertificate(formatCertificate({ publicKey: pair.publicKey }, 'a'), 'a.pub'), { publicKey: pair.publicKey });
  });

  test('bad files are refused with the file, the line and the reason', () => {
    const a = generateCurveKeyPair();
    const b = generateCurveKeyPair();
    const cases: Array<[string, RegExp]> = [
      ['', /f: not a CURVE key file: no 'curve' section/],
      ['metadata\n    name = x\n', /no 'curve' section/],
      ['curve\n', /no public-key/],
      [`curve\n    public-key = "${a.publicKey.slice(1)}"\n`, /f:2: public-key must be a 40-character Z85 key \(39/],
      [`curve\n    public-key = "${a.publicKey}"\n    public-key = "${a.publicKey}"\n`, /f:3: 'public-key' appears twice/],
      [`curve\n    public-key = "${a.publicKey}"\n    password = "x"\n`, /f:3: unknown field 'password'/],
      [`keys\n    public-key = "${a.publicKey}"\n`, /f:1: unexpected section 'keys'/],
      [`    public-key = "${a.publicKey}"\n`, /f:1: 'public-key' is outside a section/],
      [`curve\n    public-key = "${a.publicKey}"\n    secret-key = "${b.secretKey}"\n`, /not a pair/],
      [`curve\npublic-key = "${a.publicKey}"\n`, /f:2: unexpected section/],
    ];
    for (const [text, reason] of cases) assert.throws(() => parseCertificate(text, 'f'), { name: 'GatewayError', code: 'bad_request', message: reason }, JSON.stringify(text));
  });
});

describe('ZAP handler', () => {
  const start = async (name: string, pair: CurveKeyPair, clientKeys?: Map<string, string>, log = silentLogger) => {
    const server = new RouterServer({ endpoint: 'tcp://127.0.0.1:*', name, limits: DEFAULT_LIMITS, log, handle: (frames) => Promise.resolve(encodeMessage({ status: 'success', request_id: peekRequestId(frames[0]!), result: { ready: true } }, 'json')), curve: { ...pair, ...(clientKeys ? { clientKeys } : {}) } });
    await server.start();
    return server;
  };
  /** One health request over CURVE: 'answered', or the code it ended with. */
  const ask = async (server: RouterServer, serverKey: string, own: CurveKeyPair) => {
    const client = new WorkerClient({ endpoint: server.endpoint, curve: { serverKey, ...own }, timeoutMs: 1_500, codec: 'json' });
    try {
      assert.equal((await client.health()).ready, true);
      return 'answered';
    } catch (err) {
      return (err as { code: string }).code;
    } finally {
      await client.close();
    }
  };

  test("two servers' allow lists stay apart, a server without a list accepts any key, and the handler rebinds after the last server closed", async () => {
    const [keyA, keyB, keyOpen, alice, bob] = [0, 1, 2, 3, 4].map(() => generateCurveKeyPair()) as [CurveKeyPair, CurveKeyPair, CurveKeyPair, CurveKeyPair, CurveKeyPair];
    const lines: string[] = [];
    const log = createLogger({ write: (l) => void lines.push(l) });
    const a = await start('A', keyA, new Map([[alice.publicKey, 'alice.pub']]), log);
    const b = await start('B', keyB, new Map([[bob.publicKey, 'bob.pub']]), log);
    const open = await start('open', keyOpen);
    try {
      assert.equal(await ask(a, keyA.publicKey, alice), 'answered');
      assert.match(await ask(a, keyA.publicKey, bob), /^(timeout|unavailable)$/);
      assert.equal(await ask(b, keyB.publicKey, bob), 'answered');
      assert.match(await ask(b, keyB.publicKey, alice), /^(timeout|unavailable)$/);
      assert.equal(await ask(open, keyOpen.publicKey, alice), 'answered');
      const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'zmq.curve_refused');
      assert.deepEqual(new Set(refused.map((l) => `${String(l.server)}:${String(l.clientKey)}`)), new Set([`A:${bob.publicKey}`, `B:${alice.publicKey}`]));
    } finally {
      await Promise.all([a.close(), b.close(), open.close()]);
    }
    // Every server closed: the handler socket is gone; a new server binds it again.
    const again = await start('again', keyA, new Map([[alice.publicKey, 'alice.pub']]));
    try {
      assert.equal(await ask(again, keyA.publicKey, alice), 'answered');
      assert.match(await ask(again, keyA.publicKey, bob), /^(timeout|unavailable)$/);
    } finally {
      await again.close();
    }
  });
});
