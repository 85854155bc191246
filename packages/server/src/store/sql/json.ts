/** JSON columns are TEXT in both engines. */
export function toJson(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** Integer columns come back as numbers from both drivers; nullable ones may be null. */
export function num(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}
