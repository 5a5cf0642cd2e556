/**
 * ALTER TABLE actions, parsed and checked (see parse-alter.ts). Each carries
 * the statement to run on the copy, deparsed from the parse tree with the
 * copy as its relation, so no text the user typed reaches a script unparsed.
 */
export type AlterAction =
  | {
      readonly kind: 'alter-type';
      readonly column: string;
      readonly type: string;
      readonly using: string | null;
      readonly sql: string;
    }
  | {
      readonly kind: 'add-column';
      readonly column: string;
      readonly type: string;
      readonly default: string | null;
      readonly generated: string | null;
      readonly notNull: boolean;
      readonly sql: string;
    }
  | { readonly kind: 'drop-column'; readonly column: string; readonly sql: string }
  | { readonly kind: 'rename-column'; readonly column: string; readonly to: string; readonly sql: string }
  | { readonly kind: 'set-not-null' | 'drop-not-null'; readonly column: string; readonly sql: string }
  | { readonly kind: 'set-default'; readonly column: string; readonly default: string | null; readonly sql: string }
  | { readonly kind: 'add-check'; readonly name: string | null; readonly sql: string }
  | {
      readonly kind: 'add-index-constraint';
      readonly name: string | null;
      readonly constraint: 'unique' | 'exclusion' | 'primary-key';
      readonly sql: string;
    };

/** Where an action runs: on the empty copy before the backfill (row-local), or in the build stage (needs settled rows). */
export function actionStage(a: AlterAction): 'setup' | 'build' {
  switch (a.kind) {
    case 'add-index-constraint':
      // A unique index during the backfill would reject the duplicates the change log settles later.
      return 'build';
    case 'alter-type':
    case 'add-column':
    case 'drop-column':
    case 'rename-column':
    case 'set-not-null':
    case 'drop-not-null':
    case 'set-default':
    case 'add-check':
      return 'setup';
  }
}

/** The action in words, for the review summary; `oldType`: the column's type before a type change. */
export function describeAction(a: AlterAction, oldType?: string): string {
  switch (a.kind) {
    case 'alter-type':
      return `column ${a.column}: type ${oldType !== undefined ? `${oldType} ` : ''}→ ${a.type}${a.using !== null ? ` (USING ${a.using})` : ''}`;
    case 'add-column':
      return `new column ${a.column} ${a.type}${a.generated !== null ? ` GENERATED ALWAYS AS (${a.generated}) STORED` : ''}${a.default !== null ? ` DEFAULT ${a.default}` : ''}${a.notNull ? ' NOT NULL' : ''}`;
    case 'drop-column':
      return `column ${a.column} dropped`;
    case 'rename-column':
      return `column ${a.column} renamed to ${a.to}`;
    case 'set-not-null':
      return `column ${a.column}: NOT NULL`;
    case 'drop-not-null':
      return `column ${a.column}: NULL allowed`;
    case 'set-default':
      return `column ${a.column}: ${a.default === null ? 'no default' : `DEFAULT ${a.default}`}`;
    case 'add-check':
      return `new check constraint${a.name !== null ? ` ${a.name}` : ''}`;
    case 'add-index-constraint':
      return `new ${a.constraint} constraint${a.name !== null ? ` ${a.name}` : ''} (built with the other indexes)`;
  }
}
