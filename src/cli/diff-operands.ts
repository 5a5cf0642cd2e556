import { UserError } from '../model/errors.js';

/** What `diff` compares: two folders, or one approved folder (--plan) with the live database. */
export type DiffOperands = { readonly live: string } | { readonly a: string; readonly b: string };

/**
 * The operands of `diff`, for a plan, a batch and a move plan alike; `missing` is the line that
 * asks for A and B when one is missing (it names what they are: plan, batch or move plan folders).
 */
export function diffOperands(
  args: { readonly a?: string; readonly b?: string; readonly plan?: string },
  missing: string,
): DiffOperands {
  if (args.plan !== undefined) {
    if (args.a !== undefined || args.b !== undefined)
      throw new UserError('BAD_ARGUMENT', 'give either two plan folders or --plan DIR with --url, not both');
    return { live: args.plan };
  }
  if (args.a === undefined || args.b === undefined) throw new UserError('BAD_ARGUMENT', missing);
  return { a: args.a, b: args.b };
}
