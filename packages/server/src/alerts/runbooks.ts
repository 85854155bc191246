import type { Alert, AlertRule, Incident, RuleKind } from './alerts.js';
import { conditionView } from './rule-input.js';

/** The first thing to do about each type of alert; the runbook (docs/runbooks/<type>.md) says the rest. */
export const NEXT_STEPS: Readonly<Record<RuleKind, string>> = {
  threshold: "Look at the device's recent readings (GET /api/v1/devices/DEVICE/telemetry, or its page on the dashboard) to see whether the value is real or a sensor fault, then act on the equipment it measures.",
  rate: "Compare the jump with the device's neighbours and its health report: a real process change, a sensor fault, or a reboot that reset a counter.",
  absence: "Check the device's connectivity and dead letters: connected but silent points to the sensor or the application on it; dead letters point to a schema change.",
  anomaly: "Open the device's chart around the alert: a spike is often noise, a level shift a change on site, a stuck value a frozen sensor, a drift a calibration problem.",
  offline: "Check the device's last disconnect reason and its site's network; several devices of one site together point to the site, one alone to the device or its power.",
  flapping: 'Look at the device\'s disconnect reasons: keep-alive timeouts point to its network or power, a "session taken over" to two devices sharing one certificate.',
  restart_loop: "Read the restart reason and crash count in the device's health report and its last logs; a restart loop after an update is what rollback is for.",
  dead_letters: "List the device's dead letters: the reason says whether it sends a schema the platform does not know, bad values, or a broken payload.",
  clock_skew: "The device's clock is off: check that it syncs time (the agent does over MQTT); readings are placed by receive time meanwhile.",
  firmware_security: "Roll the fleet's current firmware out to this device: it runs a release below the minimum security version the fleet requires.",
  queue_dropping: 'The device lost readings it could not send: it was offline longer than its queue holds. Check its connectivity history and its queue bounds.',
  rollout_stopped: "Open the rollout: its failure gate stopped it. Look at the failed devices' reasons before resuming or aborting.",
  twin_drift: "Compare the device's desired and reported configuration (GET /api/v1/devices/DEVICE/twin): a rejected version says why in its reason; no report at all points to the device not receiving it.",
  link_quality:
    "Look at the device's connectivity history and disconnect reasons: lost readings with reconnects point to its network or an offline queue too small for its outages; duplicates alone to acknowledgements that do not reach it (a slow or lossy link).",
  cohort: "Compare the device with its peers on the dashboard (the alert says the cohort's median and spread): one device off is a sensor or calibration fault or a real local condition; check its placement and its health report.",
  cert_expiry:
    'The agent renews its certificate once most of its lifetime has passed: one that ends soon did not (offline, an old agent, or renewals refused: see its logs and the audit log). Certify a new CSR from the device (POST /api/v1/devices/DEVICE/certificates) before it ends: after that it cannot connect.',
};

/** The JSON body of a notification: the alert, the rule, what to do next and where the runbook is. */
export function notificationBody(n: { alert: Alert; rule: AlertRule; event: 'fired' | 'resolved'; why?: string; runbookBaseUrl: string }): string {
  const { alert, rule } = n;
  return JSON.stringify({
    event: `alert.${n.event}`,
    alert: {
      id: alert.id,
      type: alert.type,
      severity: alert.severity,
      state: alert.state,
      deviceId: alert.deviceId,
      summary: alert.summary,
      details: alert.details,
      firedAt: alert.firedAt,
      resolvedAt: alert.resolvedAt,
    },
    rule: { id: rule.id, name: rule.name, condition: conditionView(rule.condition) },
    ...(n.why !== undefined ? { why: n.why } : {}),
    text: n.event === 'fired' ? `${rule.severity.toUpperCase()} ${rule.name} on ${alert.deviceId}: ${alert.summary}. Next: ${NEXT_STEPS[alert.type]}` : `RESOLVED ${rule.name} on ${alert.deviceId}${n.why !== undefined ? `: ${n.why}` : ''}`,
    next: NEXT_STEPS[alert.type],
    runbook: `${n.runbookBaseUrl.replace(/\/$/, '')}/${alert.type}.md`,
  });
}

/** The body of an incident's notification: one message for many devices firing one rule. */
export function incidentBody(n: { incident: Incident; rule: AlertRule; event: 'incident.opened' | 'incident.resolved'; runbookBaseUrl: string }): string {
  const { incident, rule } = n;
  const type = rule.condition.kind;
  return JSON.stringify({
    event: n.event,
    incident: { id: incident.id, ruleId: incident.ruleId, alerts: incident.alerts, openedAt: incident.openedAt, closedAt: incident.closedAt },
    rule: { id: rule.id, name: rule.name, condition: conditionView(rule.condition) },
    text:
      n.event === 'incident.opened'
        ? `${rule.severity.toUpperCase()} ${rule.name} on ${incident.alerts} devices at once (incident ${incident.id}; devices that join it are not notified one by one). Next: look for what they share (site, tag, model, firmware) before looking at any one of them. ${NEXT_STEPS[type]}`
        : `RESOLVED incident ${incident.id}: ${rule.name}, every device of it is back (${incident.alerts} alerts)`,
    next: NEXT_STEPS[type],
    runbook: `${n.runbookBaseUrl.replace(/\/$/, '')}/${type}.md`,
  });
}
