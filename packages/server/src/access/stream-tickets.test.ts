import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, PlatformError } from '@bulwark/core';
import WebSocket from 'ws';
import { startTestServer } from '../testing/harness.js';
import { STREAM_TICKET_TTL_MS, StreamTickets } from './stream-tickets.js';

const LIVE = '/api/v1/telemetry/live';
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof PlatformError ? err.code : String(err);
  }
  return 'no error';
};

describe('stream tickets', () => {
  it('stand for the token they were issued for, once, on a live-stream route, for 30 s', () => {
    const clock = new ManualClock(1_000_000);
    const tickets = new StreamTickets(clock);
    const { ticket, expiresAt } = tickets.issue('bwt.token');
    assert.match(ticket, /^bst\.[A-Za-z0-9_-]{43}$/);
    assert.equal(expiresAt, 1_000_000 + STREAM_TICKET_TTL_MS);
    assert.equal(tickets.redeem(ticket, LIVE), 'bwt.token');
    assert.equal(
      code(() => tickets.redeem(ticket, LIVE)),
      'BULWARK_ERR_TOKEN_INVALID',
      'single use',
    );
  });

  it('expire after 30 s', () => {
    const clock = new ManualClock(0);
    const tickets = new StreamTickets(clock);
    const a = tickets.issue('t').ticket;
    const b = tickets.issue('t').ticket;
    clock.advance(STREAM_TICKET_TTL_MS - 1);
    assert.equal(tickets.redeem(a, '/api/v1/devices/:id/telemetry/live'), 't');
    clock.advance(1);
    assert.equal(
      code(() => tickets.redeem(b, LIVE)),
      'BULWARK_ERR_TOKEN_INVALID',
    );
    tickets.issue('t');
    assert.equal(tickets.outstanding, 1, 'expired tickets are forgotten');
  });

  it('are refused, and spent, on any route that is not a live stream', () => {
    const tickets = new StreamTickets(new ManualClock(0));
    const { ticket } = tickets.issue('t');
    assert.equal(
      code(() => tickets.redeem(ticket, '/api/v1/devices')),
      'BULWARK_ERR_UNAUTHENTICATED',
    );
    assert.equal(
      code(() => tickets.redeem(ticket, LIVE)),
      'BULWARK_ERR_TOKEN_INVALID',
    );
    assert.equal(
      code(() => tickets.redeem('bst.made-up', undefined)),
      'BULWARK_ERR_UNAUTHENTICATED',
    );
  });

  it('open an SSE stream over HTTP as the caller, with its scopes, and the issue is audited', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const viewer = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'vera', role: 'viewer' } });
    const viewerKey = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'v', principalId: viewer.body.id } });
    const viewerToken = await s.tokenFor(viewerKey.body.key);

    assert.equal((await s.api('POST', '/api/v1/auth/stream-ticket')).status, 401, 'needs a bearer token');
    const issued = await s.api('POST', '/api/v1/auth/stream-ticket', { token: viewerToken });
    assert.equal(issued.status, 200, issued.text);
    assert.ok(issued.body.expiresIn <= 30 && issued.body.routes.includes(LIVE));

    const open = async (path: string) => {
      const ac = new AbortController();
      const res = await fetch(s.url + path, { signal: ac.signal });
      const text = res.headers.get('content-type')?.startsWith('text/event-stream') ? '' : await res.text();
      ac.abort();
      return { status: res.status, text };
    };
    const first = await open(`${LIVE}?schema=x&ticket=${issued.body.ticket}`);
    assert.equal(first.status, 200, first.text);
    const again = await open(`${LIVE}?ticket=${issued.body.ticket}`);
    assert.equal(again.status, 401);
    assert.match(again.text, /BULWARK_ERR_TOKEN_INVALID/);

    const wrongRoute = (await s.api('POST', '/api/v1/auth/stream-ticket', { token: admin })).body.ticket as string;
    const listed = await open(`/api/v1/devices?ticket=${wrongRoute}`);
    assert.equal(listed.status, 401, 'a ticket is no token for ordinary routes');
    assert.equal((await open(`${LIVE}?ticket=${wrongRoute}`)).status, 401, 'and it was spent by the attempt');

    // The viewer's ticket carries the viewer's scopes: no devices:logs.
    const viewerTicket = (await s.api('POST', '/api/v1/auth/stream-ticket', { token: viewerToken })).body.ticket as string;
    const logs = await open(`/api/v1/devices/d1/logs/live?ticket=${viewerTicket}`);
    assert.equal(logs.status, 403);

    // Both a header and a ticket: ambiguous, refused.
    const both = await s.api('GET', `${LIVE}?ticket=x`, { token: admin });
    assert.equal(both.status, 400);

    // The WebSocket stream takes a ticket the same way (the guard runs before the upgrade).
    const wsTicket = (await s.api('POST', '/api/v1/auth/stream-ticket', { token: admin })).body.ticket as string;
    const wsUrl = `${s.url.replace(/^http/, 'ws')}/api/v1/telemetry/ws?ticket=`;
    const hello = await new Promise<unknown>((resolve, reject) => {
      const ws = new WebSocket(wsUrl + wsTicket);
      ws.once('message', (m) => {
        ws.close();
        resolve(JSON.parse(String(m)));
      });
      ws.once('error', reject);
    });
    assert.deepEqual(hello, { ready: true });
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(wsUrl + wsTicket);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    assert.equal(refused, 401, 'a spent ticket does not open a second socket');

    const audit = await s.api('GET', '/api/v1/audit?limit=50', { token: admin });
    assert.equal(audit.status, 200, audit.text);
    const issues = (audit.body as { action: string; actor: string; result: string }[]).filter((e) => e.action === 'auth.stream-ticket' && e.result === 'ok');
    assert.equal(issues.length, 4);
    assert.equal(issues.filter((e) => e.actor === viewer.body.id).length, 2, 'each issue is recorded as its caller');
  });
});
