export type {
  Alert,
  AlertChannel,
  AlertFilter,
  AlertNotification,
  AlertRepository,
  AlertRule,
  AlertState,
  Comparison,
  Grouping,
  Incident,
  NotificationEvent,
  Outgoing,
  RuleCondition,
  RuleKind,
  Transition,
  TransitionResult,
  RuleScope,
  Severity,
  Silence,
} from './alerts.js';
export { AlertService } from './service.js';
export { TransitionsPartlyApplied } from './partly-applied.js';
export type { TransitionOutcome } from './partly-applied.js';
export { AlertEvaluator, inScope } from './evaluator.js';
export type { DeviceFacts, VerdictSink } from './evaluator.js';
export { AlertNotifier } from './notifier.js';
export { Deadlines } from './deadlines.js';
export { checkRule, conditionView, formatDuration, parseDuration } from './rule-input.js';
export type { FieldFacts, RuleInput, SchemaFields } from './rule-input.js';
export { NEXT_STEPS, notificationBody } from './runbooks.js';
export { buildAlerts, builtInRules } from './wiring.js';
export type { Alerts, AlertsConfig } from './wiring.js';
export { alertRoutes } from './routes.js';
export { SeriesDetector, detectCohortOutliers } from './anomaly/index.js';
export { EmailSender, mailOf, mailtoOf, recipients } from './email.js';
export type { EmailSettings } from './email.js';
export { FleetHealth } from './fleet-health.js';
export type { ReportedHealth } from './fleet-health.js';
