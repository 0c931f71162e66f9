import type { AccountErrorCode } from './errors.ts';

// A person's name as they write it, in any script. It is shown on pages, in mails and in ID
// tokens, never used to find an account, so it keeps what real names need: the zero-width
// joiner and non-joiner (Persian, Indic scripts, emoji sequences), direction marks (LRM, RLM,
// ALM: they affect only their neighbours), variation selectors. It refuses what breaks the text
// around it: controls and line breaks, and the bidi embeddings, overrides and isolates, which
// reorder everything up to their terminator (or to the end of the line, unterminated) and can
// make a name display as something else.

/** Code points, not UTF-16 units: an emoji is one, as a person counts it. */
export const MAX_NAME_LENGTH = 200;

// Half a surrogate pair (Cs) too: it is no text at all.
const LINE_BREAKS_AND_CONTROLS = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]/u;
// LRE RLE PDF LRO RLO, and LRI RLI FSI PDI (the Unicode bidirectional algorithm, UAX #9 §2).
const BIDI_EMBEDDINGS_OVERRIDES_ISOLATES = /[\u202A-\u202E\u2066-\u2069]/u;

export type NameProblem = Extract<AccountErrorCode, 'name_too_long' | 'name_invalid_characters'>;

export function nameProblem(name: string): NameProblem | undefined {
  if (LINE_BREAKS_AND_CONTROLS.test(name) || BIDI_EMBEDDINGS_OVERRIDES_ISOLATES.test(name)) return 'name_invalid_characters';
  if ([...name].length > MAX_NAME_LENGTH) return 'name_too_long';
  return undefined;
}
