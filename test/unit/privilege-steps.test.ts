import { describe, expect, it } from 'vitest';
import { aclSteps, columnAclSteps } from '../../src/compile/privilege-steps.js';

const grant = (grantee: string, privilege: string, grantable = false) => ({ grantee, privilege, grantable });

describe('privileges are granted back in ACL order', () => {
  it('first revokes everything, then one GRANT per grantee and grant option, in the order the ACL names them', () => {
    const steps = aclSteps(
      {
        kind: 'TABLE',
        object: '"s"."t"',
        owner: 'own',
        defaultAcl: false,
        grants: [
          grant('own', 'SELECT'),
          grant('own', 'INSERT'),
          grant('bob', 'SELECT', true),
          grant('PUBLIC', 'REFERENCES'),
          grant('bob', 'UPDATE'),
        ],
      },
      'the table',
    );
    expect(steps).toHaveLength(2);
    expect(steps[0]!.sql).toContain('REVOKE ALL ON TABLE %s FROM %s CASCADE');
    expect(steps[0]!.sql).toContain("coalesce(relacl, acldefault('r', relowner))");
    expect(steps[1]!.sql.split('\n')).toEqual([
      'GRANT SELECT, INSERT ON TABLE "s"."t" TO "own";',
      'GRANT SELECT ON TABLE "s"."t" TO "bob" WITH GRANT OPTION;',
      'GRANT REFERENCES ON TABLE "s"."t" TO PUBLIC;',
      'GRANT UPDATE ON TABLE "s"."t" TO "bob";',
    ]);
  });

  it('leaves a NULL ACL alone, and gives the owner everything back if the copy received default privileges', () => {
    const steps = aclSteps(
      { kind: 'SEQUENCE', object: '"s"."q"', owner: 'o"wn', defaultAcl: true, grants: [] },
      'a sequence',
    );
    expect(steps).toHaveLength(1);
    expect(steps[0]!.sql).toContain('IS NULL THEN\n    RETURN;');
    expect(steps[0]!.sql).toContain('GRANT ALL ON SEQUENCE "s"."q" TO "o""wn";');
  });

  it("grants column privileges per column, after the table's", () => {
    const steps = columnAclSteps('"s"."t"', [
      { column: 'a b', grantee: 'r', privilege: 'SELECT', grantable: false },
      { column: 'c', grantee: 'r', privilege: 'UPDATE', grantable: false },
      { column: 'a b', grantee: 'r', privilege: 'UPDATE', grantable: false },
    ]);
    expect(steps.map((s) => s.sql)).toEqual([
      'GRANT SELECT ("a b"), UPDATE ("a b") ON TABLE "s"."t" TO "r";',
      'GRANT UPDATE ("c") ON TABLE "s"."t" TO "r";',
    ]);
  });
});
