import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { nextMessage } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { type TestServer, newAdminKey, startTestServer, tempDir } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl } from '../testing/pg.js';
import { type EngineTlsFiles, describeWith, startNats, startRedis } from '../testing/services.js';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made by OpenSSL. */
function pki(dir: string): { server: EngineTlsFiles; client: EngineTlsFiles } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Engines CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  const leaf = (name: string, ext: string) => {
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), ca: join(dir, 'ca.pem') };
  };
  return {
    server: leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'),
    client: leaf('bulwark-node', 'extendedKeyUsage=clientAuth\n'),
  };
}

/**
 * Cluster engines that speak only TLS and require a client certificate: a node given the
 * engines' CA and its own certificate works over them; one without the CA does not start.
 */
describeWith('cluster mode: TLS to NATS and Redis', ['nats-server', 'redis-server'], () => {
  it("runs over tls:// NATS and rediss:// Redis with a client certificate, and refuses to start without the engines' CA", async (t) => {
    const url = pgTestUrl(t);
    if (url === undefined) return;
    const { server, client } = pki(tempDir(t));
    // Made first, so that its clean-up (hooks run in the order they are added) stops the node
    // while NATS and Redis still run: a node stopping after its engines waits minutes for them.
    const nodes: TestServer[] = [];
    const pgSchema = await freshPgSchema(t, url, async () => {
      for (const n of nodes) await n.server.stop();
    });
    const nats = await startNats(server);
    t.after(() => nats.stop());
    const redis = await startRedis(undefined, server);
    t.after(() => redis.stop());
    assert.match(nats.url, /^tls:\/\//);
    assert.match(redis.url, /^rediss:\/\//);

    const adminKey = newAdminKey();
    const env = { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') };
    const tls = { tlsCaFile: client.ca, tlsCertFile: client.cert, tlsKeyFile: client.key };
    const node = await startTestServer(t, { config: { store: url, bus: nats.url, counters: redis.url, nodeId: 'node-a', cluster: tls }, pgSchema, adminKey, env, keepRunning: true });
    nodes.push(node);
    const admin = await node.tokenFor(adminKey);
    const device = await enrollDevice(node, admin, 'gw-tls');
    const mqttClient = await connectDevice(node, device);
    t.after(() => mqttClient.end(true));
    await mqttClient.subscribeAsync('devices/gw-tls/commands/+', { qos: 1 });
    const got = nextMessage(mqttClient, 'devices/gw-tls/commands/ping');
    const issued = await node.api('POST', '/api/v1/devices/gw-tls/commands/ping', { token: admin, body: { ifOffline: 'refuse' } });
    assert.equal(issued.status, 201, issued.text);
    assert.equal((await got).id, issued.body.id, 'the session directory and deliveries work over TLS');
    const metrics = (await node.api('GET', '/metrics')).text;
    assert.doesNotMatch(metrics, /bulwark_counters_fallback_total\{operation="increment"\} [1-9]/, 'rate limits counted in Redis over TLS, no fallback');

    // Without the CA the NATS server's certificate is not trusted: the start fails naming NATS.
    await assert.rejects(startTestServer(t, { config: { store: url, bus: nats.url, nodeId: 'node-b' }, pgSchema, adminKey, env }), (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_BUS_UNAVAILABLE');
    // A client certificate without its key is a configuration error.
    await assert.rejects(startTestServer(t, { config: { store: url, bus: nats.url, nodeId: 'node-c', cluster: { tlsCaFile: client.ca, tlsCertFile: client.cert } }, pgSchema, adminKey, env }), /cluster.tlsCertFile and cluster.tlsKeyFile go together/);
  });
});
