/**
 * The version of the JSON that --json and --events print (docs/scripting.md). It changes when a
 * documented field changes meaning or goes away; new fields may appear without a change.
 */
export const SCHEMA_VERSION = 1;

export interface ErrorObject {
  readonly schemaVersion: number;
  readonly error: {
    readonly code: string;
    /** What is wrong and how to fix it, in one line (what stderr says too). */
    readonly message: string;
    /** The fix alone, where the error has one apart from the message. */
    readonly hint?: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

/** What --json prints on stdout instead of an answer when the command fails (exit 2). */
export function errorObject(code: string, message: string, details: Readonly<Record<string, unknown>>): ErrorObject {
  const { hint, ...rest } = details;
  return {
    schemaVersion: SCHEMA_VERSION,
    error: {
      code,
      message,
      ...(typeof hint === 'string' ? { hint } : {}),
      ...(Object.keys(rest).length > 0 ? { details: rest } : {}),
    },
  };
}

/** One --json answer: the object, led by the schema version. */
export function jsonAnswer(answer: object): string {
  return JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...answer });
}
