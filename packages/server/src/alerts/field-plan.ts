import type { AlertRule } from './alerts.js';
import type { Previous, Rest, SeriesCheck, Verdict } from './conditions.js';

/** A reading rule in a device's plan, with its state for the device. */
export interface Step {
  readonly rule: AlertRule;
  readonly check: SeriesCheck;
  /**
   * May be skipped while at rest: its rule reads one schema, so this plan is the only one
   * that feeds its check (a rule on several schemas shares its check between their plans,
   * and is run on every reading).
   */
  readonly skippable: boolean;
}

/** The previous reading of a device's field in one schema; outlives the plans made for it. */
export interface FieldMemory {
  previous: Previous | undefined;
}

/**
 * The reading rules of one device on one field of one schema, run so that a reading costs
 * the rules that may have something to say rather than all of them (docs/decisions/0036).
 * A check at rest (a threshold not past its limit and not firing, a rate not firing) changes
 * nothing and says nothing while readings stay on its safe side; the plan keeps the bounds
 * all its resting checks share and, while a reading stays inside them, runs only the checks
 * not at rest. A reading outside the bounds runs every check and works the bounds out again.
 * The field's previous reading, which rate rules compare with, is kept in its `FieldMemory`.
 */
export class FieldPlan {
  /** Checks that see every reading (not at rest, or not skippable), in plan order. */
  #active: Step[];
  /** Every resting check lets through readings below this (its 'above' limits' least). */
  #aboveMin = Number.NEGATIVE_INFINITY;
  /** … above this (its 'below' limits' greatest). */
  #belowMax = Number.POSITIVE_INFINITY;
  /** … changing by less than this a minute (its rates' least). */
  #rateMin = 0;

  constructor(
    readonly field: string,
    readonly steps: readonly Step[],
    private readonly memory: FieldMemory,
  ) {
    // Until the first reading shows which checks rest, all run (the bounds let nothing through).
    this.#active = [...steps];
  }

  /** How many checks a reading inside the bounds runs. */
  get running(): number {
    return this.#active.length;
  }

  /** Runs the device's reading through the checks that may have something to say; `said` gets each verdict. */
  run(value: number, at: number, deviceId: string, said: (rule: AlertRule, deviceId: string, verdict: NonNullable<Verdict>) => void): void {
    const previous = this.memory.previous;
    this.memory.previous = { value, at };
    const perMinute = previous === undefined || at <= previous.at ? 0 : Math.abs(((value - previous.value) / (at - previous.at)) * 60_000);
    if (!(value < this.#aboveMin && value > this.#belowMax && perMinute < this.#rateMin)) {
      // Outside some resting check's bounds: every check runs, and the bounds are worked out again.
      this.#aboveMin = Number.POSITIVE_INFINITY;
      this.#belowMax = Number.NEGATIVE_INFINITY;
      this.#rateMin = Number.POSITIVE_INFINITY;
      this.#active = [...this.steps];
    }
    // The checks not at rest; one that comes to rest leaves them and narrows the bounds.
    const active = this.#active;
    let kept = 0;
    for (const step of active) {
      const verdict = step.check.observe(value, at, previous);
      if (verdict) said(step.rule, deviceId, verdict);
      const rest = step.skippable ? step.check.rest() : undefined;
      if (rest) this.#narrow(rest);
      else active[kept++] = step;
    }
    active.length = kept;
  }

  /** Bounds strict on purpose: a reading on a limit runs every check, which decide for themselves. */
  #narrow(rest: Rest): void {
    if (rest.kind === 'rate') this.#rateMin = Math.min(this.#rateMin, rest.maxPerMinute);
    else if (rest.kind === 'above') this.#aboveMin = Math.min(this.#aboveMin, rest.limit);
    else this.#belowMax = Math.max(this.#belowMax, rest.limit);
  }
}
