// What a reader makes of one user of another system's file: a line-format object (checked next
// by the one schema in record.ts), or the reason it cannot be one.
import type { SourceKeys } from './record.ts';

export type Mapped =
  | { ok: true; value: Record<string, unknown>; sourceKeys?: SourceKeys }
  | { ok: false; error: string };

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A non-empty string, or undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}
