import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { MAX_PARAM_LENGTH } from './app.js';

interface RawResponse {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/** Writes `request` as it stands on a fresh socket and reads the answer until the server closes it. */
function raw(s: TestServer, request: string): Promise<RawResponse> {
  const { hostname, port } = new URL(s.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('the server did not answer')));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers: text.slice(0, split), body: text.slice(split + 4) });
    });
    socket.write(request);
  });
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`;

/** The documented error body, nothing of Fastify's: `{ error: { code, message, requestId } }`. */
function assertOurError(r: RawResponse, status: number, code: string): { code: string; message: string; requestId: string; details?: Record<string, unknown> } {
  assert.equal(r.status, status, r.body);
  assert.doesNotMatch(r.body, /FST_|statusCode|"Bad Request"|"Not Found"/, r.body);
  const body = JSON.parse(r.body) as { error: { code: string; message: string; requestId: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.match(r.headers, new RegExp(`x-request-id: ${body.error.requestId}`, 'i'), 'the request id is the one in the header');
  return body.error;
}

describe('framework errors in the documented format', () => {
  it('answer an over-long route parameter (FST_ERR_MAX_PARAM_LENGTH) with 400 BULWARK_ERR_VALIDATION, before any route runs', async (t) => {
    const s = await startTestServer(t);
    const long = assertOurError(await raw(s, get(`/api/v1/devices/${'a'.repeat(1000)}`)), 400, 'BULWARK_ERR_VALIDATION');
    assert.deepEqual(long.details, { maxLength: MAX_PARAM_LENGTH });
    assert.ok(!long.message.includes('a'.repeat(100)), 'the path is not echoed');
    assertOurError(await raw(s, get(`/api/v1/devices/${'a'.repeat(300)}/twin`)), 400, 'BULWARK_ERR_VALIDATION');
    const metrics = await s.api('GET', '/metrics');
    assert.match(metrics.text, /bulwark_http_errors_total\{code="BULWARK_ERR_VALIDATION"\} 2/);
  });

  it('route a device id of the longest allowed length (128 characters) to its route', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const id = `d${'x'.repeat(127)}`;
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id } })).status, 201);
    const got = await s.api('GET', `/api/v1/devices/${id}`, { token: admin });
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.id, id);
    const over = await s.api('GET', `/api/v1/devices/${id}x`, { token: admin });
    assert.deepEqual([over.status, over.body.error.code], [400, 'BULWARK_ERR_VALIDATION'], 'the route schema names the problem');
  });

  it('answer bad percent-encoding (FST_ERR_BAD_URL) with 400 BULWARK_ERR_BAD_REQUEST, on known and unknown routes', async (t) => {
    const s = await startTestServer(t);
    for (const path of ['/api/v1/devices/%zz', '/api/v1/devices/%E0%A4%A', '/api/v1/devices/%C0%80', '/no/such/%ff%fe']) {
      assertOurError(await raw(s, get(path)), 400, 'BULWARK_ERR_BAD_REQUEST');
    }
  });

  it('answer methods without a route with 404, and requests Node cannot parse (unknown method, bad request line, huge headers) in the format', async (t) => {
    const s = await startTestServer(t);
    for (const method of ['PROPFIND', 'TRACE', 'PATCH', 'OPTIONS']) {
      assertOurError(await raw(s, `${method} /api/v1/devices HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`), 404, 'BULWARK_ERR_NOT_FOUND');
    }
    assertOurError(await raw(s, 'FROB /api/v1/devices HTTP/1.1\r\nHost: localhost\r\n\r\n'), 400, 'BULWARK_ERR_BAD_REQUEST');
    assertOurError(await raw(s, 'GET /api/v1/devices HTTP/9\r\n\r\n'), 400, 'BULWARK_ERR_BAD_REQUEST');
    assertOurError(await raw(s, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'), 400, 'BULWARK_ERR_BAD_REQUEST');
    assertOurError(await raw(s, get('/healthz', `X-Big: ${'b'.repeat(20_000)}\r\n`)), 431, 'BULWARK_ERR_BAD_REQUEST');
    assert.equal((await s.api('GET', '/healthz')).status, 200);
  });

  it('answer a plain GET on a WebSocket route with 404 in the format (the plugin sends no body)', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const plain = assertOurError(await raw(s, get('/api/v1/telemetry/ws', `Authorization: Bearer ${admin}\r\n`)), 404, 'BULWARK_ERR_NOT_FOUND');
    assert.match(plain.message, /WebSocket/);
  });

  it('answer an unknown path with 404 that repeats neither its query string nor more than 200 characters of it', async (t) => {
    const s = await startTestServer(t);
    const notFound = assertOurError(await raw(s, get(`/api/v1/nope/${'n'.repeat(5000)}?ticket=bst.secret-ticket&token=bwt.secret`)), 404, 'BULWARK_ERR_NOT_FOUND');
    assert.doesNotMatch(notFound.message, /secret|\?/);
    assert.ok(notFound.message.length < 260, notFound.message);
    const plain = assertOurError(await raw(s, get('/api/v1/nope?ticket=bst.secret')), 404, 'BULWARK_ERR_NOT_FOUND');
    assert.equal(plain.message, 'no route GET /api/v1/nope');
  });

  it('answer bodies Fastify refuses (media type, empty JSON) in the format', async (t) => {
    const s = await startTestServer(t);
    const post = (headers: string, body: string) => `POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${headers}\r\n${body}`;
    assertOurError(await raw(s, post('Content-Type: text/xml\r\nContent-Length: 3\r\n', '<a/')), 415, 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE');
    assertOurError(await raw(s, post('Content-Type: application/json\r\nContent-Length: 0\r\n', '')), 400, 'BULWARK_ERR_MALFORMED_JSON');
  });
});
