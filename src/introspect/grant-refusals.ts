import type { ColumnGrantRow, GrantRow, IdentityRow } from './rows.js';

/**
 * Privileges granted by someone other than the owner. The swap re-grants every
 * privilege as the owner, which would change who may revoke it (and what a
 * REVOKE … CASCADE by the real grantor removes), so such a chain is refused.
 */
export function grantorRefusals(
  owner: string,
  grants: GrantRow[],
  columnGrants: ColumnGrantRow[],
  identities: IdentityRow[],
): string[] {
  const out: string[] = [];
  const fix = 'have the owner grant it instead (REVOKE it, then GRANT it as the owner)';
  for (const g of grants) {
    if (g.grantor !== owner)
      out.push(
        `privilege ${g.privilege} on the table for "${g.grantee}" was granted by "${g.grantor}", not by the owner "${owner}": ${fix}`,
      );
  }
  for (const g of columnGrants) {
    if (g.grantor !== owner)
      out.push(
        `privilege ${g.privilege} on column "${g.column_name}" for "${g.grantee}" was granted by "${g.grantor}", not by the owner "${owner}": ${fix}`,
      );
  }
  for (const q of identities) {
    for (const g of q.grants) {
      if (g.grantor !== q.owner)
        out.push(
          `privilege ${g.privilege} on identity sequence "${q.name}" for "${g.grantee}" was granted by "${g.grantor}", not by its owner "${q.owner}": ${fix}`,
        );
    }
  }
  return out;
}
