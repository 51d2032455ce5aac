// The config of peer-server backends (`protocol: openpi | groot`): defaults per protocol and every bad field reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config.js';
import { DEFAULT_OUTBOUND } from '../../src/protocol/outbound-mapping.js';

test('openpi and GR00T backends: endpoints of their kind, the protocol defaults, state groups in order', () => {
  const config = parseConfig({
    frameworks: {
      pi: { protocol: 'openpi', endpoints: ['ws://127.0.0.1:8000/policy'], peerToken: 'k' },
      gr00t: { protocol: 'groot', endpoints: ['tcp://127.0.0.1:5555'], outbound: { state: { 'state.left_arm': 7, 'state.left_hand': 6 } } },
      native: { endpoints: ['tcp://127.0.0.1:5556'] },
    },
  });
  assert.equal(config.frameworks.pi!.protocol, 'openpi');
  assert.deepEqual(config.frameworks.pi!.outbound, DEFAULT_OUTBOUND.openpi);
  assert.equal(config.frameworks.pi!.peerToken, 'k');
  assert.deepEqual(config.frameworks.gr00t!.outbound!.state, [{ key: 'state.left_arm', width: 7 }, { key: 'state.left_hand', width: 6 }]);
  assert.equal(config.frameworks.gr00t!.outbound!.imagePrefix, 'video.');
  assert.equal(config.frameworks.native!.protocol, 'native');
});

test('bad backend fields are all reported at once', () => {
  try {
    parseConfig({
      frameworks: {
        a: { protocol: 'openpi', endpoints: ['tcp://127.0.0.1:8000'] },
        b: { protocol: 'groot', endpoints: ['tcp://127.0.0.1:5555'] },
        c: { protocol: 'grpc', endpoints: ['tcp://127.0.0.1:5555'] },
        d: { endpoints: ['tcp://127.0.0.1:5555'], outbound: { state: 's' }, peerToken: 'x' },
        e: { protocol: 'openpi', endpoints: ['ws://127.0.0.1:8000'], launcher: 'pi0', outbound: { actions: [] } },
      },
    });
    assert.fail('parsed');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const paths = err.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'frameworks.a',
      'frameworks.a.endpoints[0]',
      'frameworks.b.outbound.state',
      'frameworks.c.protocol',
      'frameworks.d.outbound',
      'frameworks.d.peerToken',
      'frameworks.e.launcher',
      'frameworks.e.outbound.actions',
    ]);
  }
});
