import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { type TLSSocket, connect } from 'node:tls';
import { enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';

/** A TLS connection to the MQTT listener; resolves once the handshake is done and any session ticket has arrived. */
async function handshake(port: number, d: { id: string; keyPem: string; certPem: string; caPem: string }, session?: Buffer): Promise<{ socket: TLSSocket; ticket: Buffer | undefined; reused: boolean }> {
  const socket = connect({ host: '127.0.0.1', port, key: d.keyPem, cert: d.certPem, ca: d.caPem, servername: 'localhost', ...(session ? { session } : {}) });
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => {
    ticket = s;
  });
  await once(socket, 'secureConnect');
  const reused = socket.isSessionReused();
  // TLS 1.3 tickets follow the handshake; a CONNECT and its CONNACK make sure they would have arrived.
  const id = Buffer.from(d.id);
  socket.write(Buffer.concat([Buffer.from([0x10, 12 + id.length, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, id.length]), id]));
  const [connack] = (await once(socket, 'data')) as [Buffer];
  assert.equal(connack.toString('hex'), '20020000');
  return { socket, ticket, reused };
}

describe('device TLS', () => {
  it('does not resume sessions: every connection verifies the certificate and the CRL again', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'resume-1');
    const first = await handshake(s.server.mqttPort, d);
    first.socket.destroy();
    const session = first.ticket ?? first.socket.getSession();
    assert.ok(session, 'the client has session state to offer');
    const second = await handshake(s.server.mqttPort, d, session);
    t.after(() => second.socket.destroy());
    assert.equal(second.reused, false);
  });
});
