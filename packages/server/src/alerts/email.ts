import { readFileSync } from 'node:fs';
import { type Clock, PlatformError } from '@bulwark/core';
import nodemailer, { type Transporter } from 'nodemailer';
import type { DeliveryResult } from '../webhooks/index.js';
import type { AlertChannel, AlertNotification } from './alerts.js';

export interface EmailSettings {
  /** smtp://user:pass@host:587 (STARTTLS required) or smtps://…:465; empty: e-mail channels are refused. */
  readonly smtpUrl: string;
  readonly from: string;
  /** PEM file of CA certificates trusted for the SMTP server besides the system's. */
  readonly caFile?: string;
  /** Allow an SMTP server without TLS (a relay on the same host); off: STARTTLS or TLS is required. */
  readonly allowInsecure: boolean;
  readonly timeoutMs: number;
}

const ADDRESS = /^[^\s@<>,;"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$|^[^\s@<>,;"]{1,64}@localhost$/;

/** `mailto:a@x,b@y` → the addresses; the form an e-mail channel keeps its recipients in. */
export const recipients = (channel: Pick<AlertChannel, 'url'>): string[] =>
  channel.url
    .replace(/^mailto:/, '')
    .split(',')
    .filter(Boolean);

/** Checks recipients as people type them (`ops@example.com, oncall@example.com`) and returns the channel's `mailto:` form. */
export function mailtoOf(list: string): string {
  const addresses = list
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (addresses.length === 0 || addresses.length > 20) throw new PlatformError('BULWARK_ERR_VALIDATION', 'email: 1 to 20 addresses, comma-separated', { details: { problems: [{ path: 'email', reason: '1 to 20 addresses' }] } });
  const bad = addresses.filter((a) => !ADDRESS.test(a));
  if (bad.length > 0) throw new PlatformError('BULWARK_ERR_VALIDATION', `email: not an address: ${bad.join(', ')}`, { details: { problems: bad.map((a) => ({ path: 'email', reason: `not an address: ${a}` })) } });
  return `mailto:${addresses.join(',')}`;
}

interface Body {
  event: string;
  text: string;
  next?: string;
  runbook?: string;
  alert?: { id: string; deviceId: string; severity: string; type: string; summary: string; details: unknown; firedAt: number; resolvedAt: number | null };
  incident?: { id: string; alerts: number; openedAt: number; closedAt: number | null };
  rule?: { id: string; name: string };
}

/** The mail of a notification: the text as subject (first line), what happened, the next step, the runbook, the details. */
export function mailOf(n: Pick<AlertNotification, 'id' | 'body'>): { subject: string; text: string } {
  const b = JSON.parse(n.body) as Body;
  const headline = b.text.split('. Next: ')[0] ?? b.text;
  const lines = [
    headline,
    '',
    ...(b.next ? [`Next step: ${b.next}`, ''] : []),
    ...(b.runbook ? [`Runbook: ${b.runbook}`, ''] : []),
    ...(b.alert
      ? [
          `Alert ${b.alert.id} (${b.alert.type}, ${b.alert.severity}) on ${b.alert.deviceId}`,
          `Fired: ${new Date(b.alert.firedAt).toISOString()}`,
          ...(b.alert.resolvedAt ? [`Resolved: ${new Date(b.alert.resolvedAt).toISOString()}`] : []),
          `Details: ${JSON.stringify(b.alert.details)}`,
        ]
      : []),
    ...(b.incident ? [`Incident ${b.incident.id}: ${b.incident.alerts} alerts`, `Opened: ${new Date(b.incident.openedAt).toISOString()}`] : []),
    ...(b.rule ? [`Rule: ${b.rule.name} (${b.rule.id})`] : []),
    '',
    `Notification ${n.id}`,
  ];
  return { subject: `[Bulwark] ${headline}`.slice(0, 200), text: lines.join('\n') };
}

/** Sends alert notifications to e-mail channels over SMTP (nodemailer), TLS required unless allowed otherwise. */
export class EmailSender {
  readonly #transport: Transporter | undefined;

  constructor(
    private readonly settings: EmailSettings,
    private readonly clock: Clock,
  ) {
    if (settings.smtpUrl === '') return;
    const url = new URL(settings.smtpUrl);
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `alerts.smtpUrl: smtp:// or smtps:// (got ${url.protocol})`);
    const ca = settings.caFile === undefined ? undefined : readCa(settings.caFile);
    this.#transport = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
      secure: url.protocol === 'smtps:',
      requireTLS: !settings.allowInsecure,
      ignoreTLS: false,
      ...(url.username ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
      tls: { minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
      connectionTimeout: settings.timeoutMs,
      greetingTimeout: settings.timeoutMs,
      socketTimeout: settings.timeoutMs,
    });
  }

  get configured(): boolean {
    return this.#transport !== undefined;
  }

  async send(channel: AlertChannel, n: AlertNotification): Promise<DeliveryResult> {
    const started = this.clock.now();
    if (!this.#transport) return { ok: false, status: null, error: 'alerts.smtpUrl is not set: e-mail channels cannot send', durationMs: 0 };
    const { subject, text } = mailOf(n);
    try {
      await this.#transport.sendMail({ from: this.settings.from, to: recipients(channel), subject, text, headers: { 'X-Bulwark-Delivery-Id': n.id, 'X-Bulwark-Channel-Id': channel.id } });
      return { ok: true, status: 250, durationMs: this.clock.now() - started };
    } catch (err) {
      const e = err as Error & { responseCode?: number };
      return { ok: false, status: e.responseCode ?? null, error: `SMTP: ${e.message}`, durationMs: this.clock.now() - started };
    }
  }

  close(): void {
    this.#transport?.close();
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `alerts.smtpCaFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
