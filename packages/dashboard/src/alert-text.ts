import type { Alert, AlertRule, Silence } from './types';

/** A rule's condition as one line: `temp_c > 80 for 5m, hysteresis 2`, `offline for 5m`. */
export function conditionText(c: AlertRule['condition']): string {
  const s = (key: string) => String(c[key] ?? '?');
  const lasting = c.for !== undefined && c.for !== '0ms' ? ` for ${s('for')}` : '';
  switch (c.kind) {
    case 'threshold':
      return `${s('field')} ${s('op')} ${s('value')}${lasting}${c.hysteresis ? `, hysteresis ${s('hysteresis')}` : ''}`;
    case 'rate':
      return `${s('field')} changes by more than ${s('maxPerMinute')} a minute`;
    case 'absence':
      return `no reading${c.field ? ` with ${s('field')}` : ''}${lasting}`;
    case 'anomaly':
      return `anomaly in ${s('field')} (learns for ${s('warmup')} readings)`;
    case 'offline':
      return `offline${lasting}`;
    case 'flapping':
      return `more than ${s('connects')} connections within ${s('within')}`;
    case 'restart_loop':
      return 'the health report says restart loop';
    case 'dead_letters':
      return `more than ${s('perMinute')} dead letters a minute`;
    case 'clock_skew':
      return `clock off by more than ${s('max')}`;
    case 'firmware_security':
      return 'firmware below the minimum security version';
    case 'queue_dropping':
      return "the agent's offline queue drops readings";
    case 'rollout_stopped':
      return 'a rollout paused or aborted itself';
    case 'twin_drift':
      return `configuration out of sync${lasting}`;
    case 'cert_expiry':
      return `certificate ends within ${s('within')}`;
    case 'link_quality':
      return `more than ${s('lost')} readings lost or ${s('duplicates')} sent twice within ${s('within')}`;
    case 'cohort':
      return `${s('field')} over ${s('window')} ${s('sigma')}σ or more from the device's ${c.by === 'tag' ? 'tag' : 'model'} peers`;
    default:
      return [
        c.kind,
        ...Object.entries(c)
          .filter(([k]) => k !== 'kind')
          .map(([k, v]) => `${k} ${JSON.stringify(v)}`),
      ].join(', ');
  }
}

export function scopeText(scope: AlertRule['scope']): string {
  const parts = [
    scope.deviceIds.length ? `devices ${scope.deviceIds.join(', ')}` : '',
    scope.tags.length ? `tags ${scope.tags.join(', ')}` : '',
    scope.models.length ? `models ${scope.models.join(', ')}` : '',
    scope.groups?.length ? `groups ${scope.groups.join(', ')}` : '',
    scope.schemas.length ? `schemas ${scope.schemas.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join(' · ') || 'every device';
}

/** The silence in force that covers an alert's rule and device (the one lasting longest), if any. */
export function silenceFor(alert: Pick<Alert, 'ruleId' | 'deviceId'>, silences: readonly Silence[], now = Date.now()): Silence | undefined {
  return silences.filter((s) => s.expiresAt > now && (s.ruleId === null || s.ruleId === alert.ruleId) && (s.deviceId === null || s.deviceId === alert.deviceId)).sort((a, b) => b.expiresAt - a.expiresAt)[0];
}

/** Only http(s) runbook addresses become links; the default (a path in the repository) is shown as text. */
export const runbookUrl = (runbook: string): string | undefined => (/^https?:\/\//i.test(runbook) ? runbook : undefined);

/** What an alert is about: a device, or (`rollout:<id>`) a rollout that stopped itself. */
export function subject(deviceId: string): { label: string; path: [string, string] } {
  return deviceId.startsWith('rollout:') ? { label: `rollout ${deviceId.slice(8)}`, path: ['rollouts', deviceId.slice(8)] } : { label: deviceId, path: ['devices', deviceId] };
}
