import type { AlertRule, RuleCondition } from '../alerts/alerts.js';
import type { VerdictSink } from '../alerts/evaluator.js';

/** Test-only: a rule in stored form, enabled, scoped as given. */
export const testRule = (id: string, condition: RuleCondition, scope: Partial<AlertRule['scope']> = {}): AlertRule => ({
  id,
  name: id,
  severity: 'warning',
  scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [], ...scope },
  condition,
  enabled: true,
  builtIn: false,
  createdBy: 'test',
  createdAt: 0,
  updatedAt: 0,
});

/** Test-only: a verdict sink that records fires and clears (`fire <rule> <device>: <summary>`); an alert is open from its fire to its clear. */
export function verdictRecorder(): VerdictSink & { events: string[] } {
  const open = new Set<string>();
  const events: string[] = [];
  return {
    events,
    fire: async (r, d, summary) => {
      if (open.has(`${r.id}/${d}`)) return;
      open.add(`${r.id}/${d}`);
      events.push(`fire ${r.id} ${d}: ${summary}`);
    },
    clear: async (r, d) => {
      open.delete(`${r.id}/${d}`);
      events.push(`clear ${r.id} ${d}`);
    },
    mayBeOpen: (r, d) => open.has(`${r}/${d}`),
  };
}
