import { Counter, Gauge, type Registry } from 'prom-client';

export function webhookMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'bulwark_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result (delivered, failed, refused: the target was refused by the SSRF guard, dead_lettered: a batch gave up)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    readings: new Counter({ name: 'bulwark_webhook_readings_delivered_total', help: 'Readings receivers took (2xx), counted once per batch delivered', registers: [registry] }),
    lag: new Gauge({ name: 'bulwark_webhook_lag_entries', help: 'Per subscription: feed entries (any reading, before its filter) after its cursor', labelNames: ['webhook'] as const, registers: [registry] }),
    paused: new Gauge({ name: 'bulwark_webhooks_paused', help: 'Webhook subscriptions paused (by people, or automatically after a batch failed every attempt)', registers: [registry] }),
    targetsRefused: new Counter({
      name: 'bulwark_webhook_targets_refused_total',
      help: 'Webhook URLs or addresses refused (not https, loopback, private, link-local, …), at creation or at delivery',
      labelNames: ['reason', 'at'] as const,
      registers: [registry],
    }),
    skipped: new Counter({ name: 'bulwark_webhook_feed_skipped_total', help: 'Readings deleted (retention) before a lagging subscription delivered them', registers: [registry] }),
  };
}

export type WebhookMetrics = ReturnType<typeof webhookMetrics>;
