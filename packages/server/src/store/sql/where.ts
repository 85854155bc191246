import type { SqlValue } from '../sql-client.js';

/**
 * Builds the WHERE clause of a filtered list query with numbered placeholders:
 * `w.add('state = ?', 'active')` becomes `state = $1` with 'active' as the first parameter.
 */
export class Where {
  readonly #clauses: string[] = [];

  /** `params`: shared with an enclosing Where when this one builds a part of it (anyOf). */
  constructor(readonly params: SqlValue[] = []) {}

  /** Adds a clause whose single `?` takes `value`, when the value is given. */
  add(clause: string, value: SqlValue | undefined): this {
    if (value === undefined) return this;
    this.params.push(value);
    this.#clauses.push(clause.replace('?', `$${this.params.length}`));
    return this;
  }

  /** Adds a clause whose `?`s take `values` in order, when the first value is given. */
  addAll(clause: string, values: readonly (SqlValue | undefined)[]): this {
    if (values[0] === undefined) return this;
    let text = clause;
    for (const v of values) {
      this.params.push(v ?? null);
      text = text.replace('?', `$${this.params.length}`);
    }
    this.#clauses.push(text);
    return this;
  }

  /** Adds a clause without parameters. */
  raw(clause: string): this {
    this.#clauses.push(clause);
    return this;
  }

  /** Adds `((A) OR (B) …)`, each part built on a Where that numbers on after this one; no part matches nothing. */
  anyOf(parts: readonly ((w: Where) => void)[]): this {
    const texts = parts.map((build) => {
      const sub = new Where(this.params);
      build(sub);
      return sub.#clauses.length ? `(${sub.#clauses.join(' AND ')})` : '(1 = 1)';
    });
    this.#clauses.push(texts.length ? `(${texts.join(' OR ')})` : '(1 = 0)');
    return this;
  }

  /** The next placeholder, for parameters after the WHERE clause (LIMIT). */
  next(value: SqlValue): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  toString(): string {
    return this.#clauses.length ? `WHERE ${this.#clauses.join(' AND ')}` : '';
  }
}

/**
 * A devices row's `tags` (a JSON array) holding `tag`: `w.add(HAS_TAG, tagPattern(tag))`. Tags
 * are letters, digits and . _ : = -, and `_` is the one LIKE wildcard among them: escaped, or
 * `a_b` would also find devices tagged `axb`.
 */
export const HAS_TAG = "tags LIKE ? ESCAPE '\\'";
export const tagPattern = (tag: string): string => `%${JSON.stringify(tag).replace(/_/g, '\\_')}%`;

/** The numbered parameters `$from, $from+1, …` of `n` values, for an `IN (…)` list. */
export const numberedParams = (n: number, from: number): string => Array.from({ length: n }, (_, i) => `$${i + from}`).join(', ');
