import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { PlatformError } from '@bulwark/core';
import { IdParams, Nullable, bearer, errorResponses } from '../http/index.js';
import type { Alert, AlertChannel, AlertRule } from './alerts.js';
import { conditionView, parseDuration } from './rule-input.js';
import { mailtoOf } from './email.js';
import type { AlertService } from './service.js';
import type { GroupSelector } from '../registry/index.js';

const SeverityT = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]);
const Names = Type.Array(Type.String(), { maxItems: 1000 });
const ScopeT = Type.Object(
  { deviceIds: Type.Optional(Names), tags: Type.Optional(Names), models: Type.Optional(Names), groups: Type.Optional(Names), schemas: Type.Optional(Names) },
  {
    description: 'Which devices: by id, tag, model, device group (static or dynamic; membership read again at least every minute); telemetry rules also by schema (name@version). Empty lists do not narrow; non-empty ones narrow together.',
  },
);
const ConditionT = Type.Object(
  { kind: Type.String({ description: 'threshold, rate, absence, anomaly, offline, flapping, restart_loop, dead_letters, clock_skew, firmware_security, queue_dropping, rollout_stopped, twin_drift or cert_expiry' }) },
  {
    additionalProperties: true,
    description: 'threshold {field, op (> >= < <=), value, for ("5m"), hysteresis}; rate {field, maxPerMinute}; absence {field?, for}; anomaly {field, warmup}; offline {for}',
  },
);
const RuleView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  severity: Type.String(),
  scope: Type.Object({ deviceIds: Names, tags: Names, models: Names, groups: Names, schemas: Names }),
  condition: Type.Object({}, { additionalProperties: true }),
  enabled: Type.Boolean(),
  builtIn: Type.Boolean(),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});
const AlertView = Type.Object({
  id: Type.String(),
  ruleId: Type.String(),
  deviceId: Type.String(),
  type: Type.String(),
  severity: Type.String(),
  state: Type.String(),
  summary: Type.String(),
  details: Type.Object({}, { additionalProperties: true }),
  firedAt: Type.Integer(),
  acknowledgedAt: Nullable(Type.Integer()),
  acknowledgedBy: Nullable(Type.String()),
  resolvedAt: Nullable(Type.Integer()),
  silenced: Type.Boolean(),
  incidentId: Nullable(Type.String()),
  runbook: Type.String(),
});
const IncidentView = Type.Object({
  id: Type.String(),
  ruleId: Type.String(),
  openedAt: Type.Integer(),
  closedAt: Nullable(Type.Integer()),
  alerts: Type.Integer({ description: 'alerts it gathered so far' }),
});
const SilenceView = Type.Object({
  id: Type.String(),
  ruleId: Nullable(Type.String()),
  deviceId: Nullable(Type.String()),
  reason: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
  expiresAt: Type.Integer(),
});
const ChannelView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.String(),
  url: Type.String(),
  minSeverity: Type.String(),
  batch: Type.Boolean({ description: 'a webhook that takes the notifications of one pass in one POST' }),
  createdBy: Type.String(),
  createdAt: Type.Integer(),
});
const RuleBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    severity: Type.Optional(SeverityT),
    scope: Type.Optional(ScopeT),
    condition: Type.Optional(ConditionT),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const tags = ['alerts'];
const read = { auth: { scope: 'alerts:read' } } as const;

export interface AlertRouteOptions {
  readonly alerts: AlertService;
  readonly runbookBaseUrl: string;
  /** Checks a channel's URL against the webhook policy (https, no private targets) and makes its secret. */
  readonly checkChannelUrl: (url: string) => Promise<void>;
  readonly newSecret: () => string;
  /** Whether an SMTP server is configured (e-mail channels can send). */
  readonly emailReady: () => boolean;
  /** Device groups: a rule's scope names existing ones; a caller limited to groups sees their devices' alerts only. */
  readonly groups: {
    existing(ids: readonly string[]): Promise<string[]>;
    selectors(ids: readonly string[]): Promise<GroupSelector[]>;
    anyContains(ids: readonly string[], deviceId: string): Promise<boolean>;
  };
}

/** Alert rules, alerts (acknowledge, resolve), silences and notification channels. */
export const alertRoutes: FastifyPluginAsyncTypebox<AlertRouteOptions> = async (app, { alerts, runbookBaseUrl, checkChannelUrl, newSecret, emailReady, groups }) => {
  const ruleView = (r: AlertRule) => ({ ...r, condition: conditionView(r.condition) });
  const alertView = (a: Alert) => ({ ...a, runbook: `${runbookBaseUrl.replace(/\/$/, '')}/${a.type}.md` });
  const channelView = ({ secret: _secret, ...c }: AlertChannel) => c;
  const actor = (request: { auth?: { principal: { id: string } } }) => request.auth?.principal.id ?? 'unknown';
  const limitOf = (request: { auth?: { principal: { deviceGroups: readonly string[] | null } } }) => request.auth?.principal.deviceGroups ?? null;
  /** The alert, when the caller may see it: outside a limited caller's groups it is not found, as for an unknown id. */
  const visible = async (request: Parameters<typeof limitOf>[0], id: string): Promise<Alert> => {
    const alert = await alerts.get(id);
    const limit = limitOf(request);
    if (limit !== null && !(await groups.anyContains(limit, alert.deviceId))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no alert ${id}`);
    return alert;
  };
  /** Every group a rule's scope names must exist (checked here; the rule's own checks come after). */
  const checkScopeGroups = async (scope: { groups?: readonly string[] } | undefined) => {
    const named = scope?.groups ?? [];
    if (named.length === 0) return;
    const known = new Set(await groups.existing(named));
    const problems = named.flatMap((g, i) => (known.has(g) ? [] : [{ path: `scope.groups[${i}]`, reason: `no group ${g}` }]));
    if (problems.length > 0) throw new PlatformError('BULWARK_ERR_VALIDATION', `the rule is not valid: ${problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`, { details: { problems } });
  };

  app.get(
    '/api/v1/alerts',
    {
      config: { ...read, groupLimit: 'filtered' },
      schema: {
        tags,
        security: bearer,
        summary: 'Alerts, newest first: open (firing or acknowledged), firing, acknowledged or resolved; by device or rule',
        querystring: Type.Object(
          {
            state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('firing'), Type.Literal('acknowledged'), Type.Literal('resolved')])),
            deviceId: Type.Optional(Type.String({ maxLength: 128 })),
            ruleId: Type.Optional(Type.String({ maxLength: 128 })),
            before: Type.Optional(Type.Integer({ minimum: 0, description: 'fired before this time (ms): the next page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(AlertView), ...errorResponses },
      },
    },
    async (request) => {
      const limit = limitOf(request);
      const within = limit === null ? {} : { within: await groups.selectors(limit) };
      return (await alerts.list({ ...request.query, ...within, limit: request.query.limit ?? 100 })).map(alertView);
    },
  );

  app.get(
    '/api/v1/alerts/:id',
    {
      config: { ...read, groupLimit: 'filtered' },
      schema: { tags, security: bearer, summary: 'One alert', params: IdParams, response: { 200: AlertView, ...errorResponses } },
    },
    async (request) => alertView(await visible(request, request.params.id)) as never,
  );

  app.post(
    '/api/v1/alerts/:id/acknowledge',
    {
      config: { auth: { scope: 'alerts:write' }, groupLimit: 'filtered', audit: 'alert.acknowledge.request' },
      schema: { tags, security: bearer, summary: 'Acknowledge a firing alert: someone is on it (it still resolves by itself)', params: IdParams, response: { 200: AlertView, ...errorResponses } },
    },
    async (request) => {
      await visible(request, request.params.id);
      return alertView(await alerts.acknowledge(request.params.id, actor(request)));
    },
  );

  app.post(
    '/api/v1/alerts/:id/resolve',
    {
      config: { auth: { scope: 'alerts:write' }, groupLimit: 'filtered', audit: 'alert.resolve.request' },
      schema: { tags, security: bearer, summary: 'Resolve an open alert by hand (one whose condition cannot clear by itself)', params: IdParams, response: { 200: AlertView, ...errorResponses } },
    },
    async (request) => {
      await visible(request, request.params.id);
      return alertView(await alerts.resolveByHand(request.params.id, actor(request)));
    },
  );

  app.get(
    '/api/v1/alerts/incidents',
    {
      config: read,
      schema: {
        tags,
        security: bearer,
        summary: 'Fleet-wide incidents (many devices firing one rule together), newest first',
        querystring: Type.Object({ open: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
        response: { 200: Type.Array(IncidentView), ...errorResponses },
      },
    },
    async (request) => (await alerts.listIncidents(request.query.open, request.query.limit ?? 100)) as never,
  );

  app.get(
    '/api/v1/alerts/rules',
    {
      config: read,
      schema: { tags, security: bearer, summary: 'Every alert rule, the built-in ones first', response: { 200: Type.Array(RuleView), ...errorResponses } },
    },
    async () => (await alerts.listRules()).map(ruleView) as never,
  );

  app.post(
    '/api/v1/alerts/rules',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.rule.create' },
      schema: { tags, security: bearer, summary: "Create a rule; refused with each problem's path and reason", body: RuleBody, response: { 201: RuleView, ...errorResponses } },
    },
    async (request, reply) => {
      await checkScopeGroups(request.body.scope);
      const rule = await alerts.createRule(request.body, actor(request));
      request.auditTarget = rule.id;
      return reply.code(201).send(ruleView(rule) as never);
    },
  );

  app.get(
    '/api/v1/alerts/rules/:id',
    {
      config: read,
      schema: { tags, security: bearer, summary: 'One rule', params: IdParams, response: { 200: RuleView, ...errorResponses } },
    },
    async (request) => ruleView(await alerts.getRule(request.params.id)) as never,
  );

  app.patch(
    '/api/v1/alerts/rules/:id',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.rule.update' },
      schema: { tags, security: bearer, summary: 'Change a rule (what is sent; the rest stays); its per-device state starts again', params: IdParams, body: RuleBody, response: { 200: RuleView, ...errorResponses } },
    },
    async (request) => {
      await checkScopeGroups(request.body.scope);
      return ruleView(await alerts.updateRule(request.params.id, request.body)) as never;
    },
  );

  app.delete(
    '/api/v1/alerts/rules/:id',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.rule.delete' },
      schema: { tags, security: bearer, summary: 'Delete a rule (built-in rules are disabled instead); its alerts stay in the history', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    },
    async (request, reply) => {
      await alerts.deleteRule(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/alerts/silences',
    {
      config: read,
      schema: { tags, security: bearer, summary: 'Silences in force', response: { 200: Type.Array(SilenceView), ...errorResponses } },
    },
    async () => (await alerts.silences()) as never,
  );

  app.post(
    '/api/v1/alerts/silences',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.silence.create' },
      schema: {
        tags,
        security: bearer,
        summary: 'Stop notifications of a rule, a device or both until the silence expires (alerts are still stored and shown)',
        body: Type.Object(
          {
            ruleId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            reason: Type.String({ minLength: 1, maxLength: 500 }),
            duration: Type.Union([Type.String({ maxLength: 16 }), Type.Integer({ minimum: 1 })], { description: 'e.g. "2h", or milliseconds; at most 30d' }),
          },
          { additionalProperties: false },
        ),
        response: { 201: SilenceView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { duration, ...rest } = request.body;
      const durationMs = parseDuration(duration);
      if (durationMs === undefined || durationMs < 1000) {
        throw new PlatformError('BULWARK_ERR_VALIDATION', `duration: ${JSON.stringify(duration)} is not a duration of 1s to 30d (e.g. "30m", "2h")`, { details: { problems: [{ path: 'duration', reason: 'not a duration' }] } });
      }
      const silence = await alerts.silence({ ...rest, durationMs }, actor(request));
      request.auditTarget = silence.id;
      request.auditDetails = { reason: silence.reason, expiresAt: silence.expiresAt, ruleId: silence.ruleId, deviceId: silence.deviceId };
      return reply.code(201).send(silence);
    },
  );

  app.delete(
    '/api/v1/alerts/silences/:id',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.silence.expire' },
      schema: { tags, security: bearer, summary: 'End a silence now', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    },
    async (request, reply) => {
      await alerts.expireSilence(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/alerts/channels',
    {
      config: read,
      schema: { tags, security: bearer, summary: 'Where notifications go', response: { 200: Type.Array(ChannelView), ...errorResponses } },
    },
    async () => (await alerts.channels()).map(channelView) as never,
  );

  app.post(
    '/api/v1/alerts/channels',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.channel.create' },
      schema: {
        tags,
        security: bearer,
        summary: 'Add a channel: a webhook (`url`; the answer holds its signing secret, shown this once; signed like webhooks; `batch: true` sends what is due in one POST) or e-mail (`email`: addresses, comma-separated; needs alerts.smtpUrl)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            url: Type.Optional(Type.String({ minLength: 8, maxLength: 2048 })),
            email: Type.Optional(Type.String({ minLength: 3, maxLength: 2048, description: 'recipients, comma-separated' })),
            minSeverity: Type.Optional(SeverityT),
            batch: Type.Optional(Type.Boolean({ description: 'webhook only: the notifications due in one pass go in one POST, `{"event":"batch","notifications":[…]}` (up to 100, in order), instead of one POST each' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([ChannelView, Type.Object({ secret: Type.Optional(Type.String()) })]), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name, url, email, minSeverity, batch } = request.body;
      if ((url === undefined) === (email === undefined))
        throw new PlatformError('BULWARK_ERR_VALIDATION', 'a channel has a url (webhook) or an email (addresses), not both', { details: { problems: [{ path: url === undefined ? 'url' : 'email', reason: 'give url or email' }] } });
      if (email !== undefined) {
        if (batch === true) throw new PlatformError('BULWARK_ERR_VALIDATION', 'batch is for webhook channels: an e-mail channel sends one message per notification', { details: { problems: [{ path: 'batch', reason: 'webhook only' }] } });
        if (!emailReady()) throw new PlatformError('BULWARK_ERR_CONFLICT', 'e-mail channels need an SMTP server: set alerts.smtpUrl (BULWARK_ALERTS_SMTP_URL) and restart');
        const channel = await alerts.addChannel({ name, url: mailtoOf(email), ...(minSeverity ? { minSeverity } : {}) }, null, actor(request));
        request.auditTarget = channel.id;
        request.auditDetails = { email: channel.url };
        return reply.code(201).send(channelView(channel));
      }
      await checkChannelUrl(url as string);
      const secret = newSecret();
      const channel = await alerts.addChannel({ name, url: url as string, ...(minSeverity ? { minSeverity } : {}), ...(batch === true ? { batch } : {}) }, secret, actor(request));
      request.auditTarget = channel.id;
      request.auditDetails = { url: channel.url };
      return reply.code(201).send({ ...channelView(channel), secret });
    },
  );

  app.delete(
    '/api/v1/alerts/channels/:id',
    {
      config: { auth: { scope: 'alerts:write' }, audit: 'alert.channel.delete' },
      schema: { tags, security: bearer, summary: 'Delete a channel (its undelivered notifications are given up)', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    },
    async (request, reply) => {
      await alerts.deleteChannel(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
