import { dollarTag, ident, literal, qualified } from '../model/quote.js';
import type { GrantModel } from '../model/types.js';
import type { Step } from './step.js';
import type { StepInput } from './step-input.js';

/** What an ACL belongs to, as GRANT and REVOKE name it. */
export interface AclTarget {
  readonly kind: 'TABLE' | 'SEQUENCE';
  /** Quoted, qualified name. */
  readonly object: string;
  readonly owner: string;
  /** The catalog's ACL was NULL (owner only, the built-in default). */
  readonly defaultAcl: boolean;
  readonly grants: readonly GrantModel[];
}

function grantee(name: string): string {
  return name === 'PUBLIC' ? 'PUBLIC' : ident(name);
}

/**
 * Takes every privilege off the object, whoever it was given to (the copy may
 * have received some from ALTER DEFAULT PRIVILEGES). Dynamic because those
 * grantees are not known when planning; with `onlyIfSet`, an object whose ACL
 * is still NULL is left alone, and the owner gets back what NULL means.
 */
function revokeAll(t: AclTarget, onlyIfSet: boolean): string {
  const acl = `(SELECT relacl FROM pg_class WHERE oid = ${literal(t.object)}::regclass)`;
  // A NULL ACL means the owner's default privileges: they have to go too.
  const effective = `(SELECT coalesce(relacl, acldefault(${literal(t.kind === 'TABLE' ? 'r' : 's')}, relowner)) FROM pg_class WHERE oid = ${literal(t.object)}::regclass)`;
  const body = [
    'DECLARE',
    '  r record;',
    'BEGIN',
    ...(onlyIfSet ? [`  IF ${acl} IS NULL THEN`, '    RETURN;', '  END IF;'] : []),
    `  FOR r IN SELECT DISTINCT x.grantee FROM aclexplode(${effective}) x LOOP`,
    `    EXECUTE format('REVOKE ALL ON ${t.kind} %s FROM %s CASCADE', ${literal(t.object)},`,
    "                   CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);",
    '  END LOOP;',
    ...(onlyIfSet ? [`  GRANT ALL ON ${t.kind} ${t.object} TO ${ident(t.owner)};`] : []),
    'END',
  ].join('\n');
  const tag = dollarTag(body);
  return `DO ${tag}\n${body}\n${tag};`;
}

/**
 * Right after the copy is created: ALTER DEFAULT PRIVILEGES may have given it to roles that
 * cannot read the table; take that back at once, so nobody reads the rows through the copy
 * during the run. The owner keeps its privileges until the swap resets them exactly.
 */
export function copyRevokeSteps(copy: string): Step[] {
  const body = [
    'DECLARE',
    '  r record;',
    'BEGIN',
    `  FOR r IN SELECT DISTINCT x.grantee FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = ${literal(copy)}::regclass)) x`,
    `            WHERE x.grantee <> (SELECT relowner FROM pg_class WHERE oid = ${literal(copy)}::regclass) LOOP`,
    `    EXECUTE format('REVOKE ALL ON TABLE %s FROM %s CASCADE', ${literal(copy)},`,
    "                   CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);",
    '  END LOOP;',
    'END',
  ].join('\n');
  const tag = dollarTag(body);
  return [
    {
      kind: 'privileges',
      comment: "the copy is nobody's but the owner's until the swap (undoing default privileges)",
      sql: `DO ${tag}\n${body}\n${tag};`,
      locks: [],
    },
  ];
}

/** Grants in ACL order, one statement per grantee and grant option: the aclitems come back in the same order. */
function grantInOrder(
  kind: string,
  object: string,
  grants: readonly { grantee: string; privilege: string; grantable: boolean }[],
  columns: (g: number) => string,
): string[] {
  const groups: { grantee: string; grantable: boolean; privileges: string[] }[] = [];
  grants.forEach((g, i) => {
    let group = groups.find((x) => x.grantee === g.grantee && x.grantable === g.grantable);
    if (!group) groups.push((group = { grantee: g.grantee, grantable: g.grantable, privileges: [] }));
    group.privileges.push(`${g.privilege}${columns(i)}`);
  });
  return groups.map(
    (x) =>
      `GRANT ${x.privileges.join(', ')} ON ${kind} ${object} TO ${grantee(x.grantee)}${x.grantable ? ' WITH GRANT OPTION' : ''};`,
  );
}

/** Resets the object's privileges to exactly the planned ACL. */
export function aclSteps(t: AclTarget, what: string): Step[] {
  if (t.defaultAcl) {
    return [
      {
        kind: 'privileges',
        comment: `privileges on ${what}: the owner's only, as on the table (undoing any default privileges the copy received)`,
        sql: revokeAll(t, true),
        locks: [],
      },
    ];
  }
  const steps: Step[] = [
    {
      kind: 'privileges',
      comment: `privileges on ${what}: first none at all, whoever holds them`,
      sql: revokeAll(t, false),
      locks: [],
    },
    {
      kind: 'privileges',
      comment: `privileges on ${what}: then exactly the original ACL, granted by the owner in its order`,
      sql: grantInOrder(t.kind, t.object, t.grants, () => '').join('\n'),
      locks: [],
    },
  ];
  return steps.filter((s) => s.sql !== '');
}

/** Column privileges after the table's (REVOKE ALL on the table removed them): per column, in ACL order. */
export function columnAclSteps(
  object: string,
  grants: readonly { column: string; grantee: string; privilege: string; grantable: boolean }[],
): Step[] {
  const columns = [...new Set(grants.map((g) => g.column))];
  return columns.map((column) => {
    const own = grants.filter((g) => g.column === column);
    return {
      kind: 'privileges',
      comment: `privileges on column ${column}, in ACL order`,
      sql: grantInOrder('TABLE', object, own, () => ` (${ident(column)})`).join('\n'),
      locks: [],
    };
  });
}

/** The rebuilt table's and its identity sequences' privileges, reset to exactly the original ACLs. */
export function privilegeSteps(input: StepInput): Step[] {
  const { model, src } = input;
  const steps = aclSteps(
    { kind: 'TABLE', object: src, owner: model.owner, defaultAcl: model.defaultAcl, grants: model.grants },
    'the table',
  );
  steps.push(...columnAclSteps(src, model.columnGrants));
  for (const q of model.identities) {
    steps.push(
      ...aclSteps(
        {
          kind: 'SEQUENCE',
          object: qualified(q.schema, q.name),
          owner: model.owner,
          defaultAcl: q.defaultAcl,
          grants: q.grants,
        },
        `identity sequence ${q.name}`,
      ),
    );
  }
  return steps;
}
