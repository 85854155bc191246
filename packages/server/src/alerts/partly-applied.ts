import type { TransitionResult } from './alerts.js';

/** What became of one transition of a group: applied with its result, or rolled back alone. */
export type TransitionOutcome = { readonly ok: true; readonly result: TransitionResult } | { readonly ok: false; readonly error: unknown };

/**
 * What `AlertRepository.apply` rejects with when some transitions of its group failed: each
 * of those rolled back alone (its alert, notifications and audit entry: nothing of it was
 * written), and the others were committed with their audit entries, in order. `outcomes`
 * follows the group's order.
 */
export class TransitionsPartlyApplied extends Error {
  constructor(readonly outcomes: readonly TransitionOutcome[]) {
    const failed = outcomes.filter((o) => !o.ok).length;
    super(`${failed} of ${outcomes.length} alert transitions failed and were rolled back; the others were applied`);
    this.name = 'TransitionsPartlyApplied';
  }
}
