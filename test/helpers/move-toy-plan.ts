/**
 * A hand-written move plan for testing the runner before (and apart from) the move compiler: every stage file
 * of src/compile/move/stages.ts, each refusing unless its own side is in a state the stage machine lets it
 * start from (and the other side where it `needs` it), recording what the machine says it records, with the
 * cross-side writes through postgres_fdw where the contract puts them. The data part is a stand-in: the
 * backfill and the cut-over copy one table whole. A runner that runs a stage out of order, on the wrong side,
 * or skips one, fails here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../../src/compile/compile.js';
import {
  moveStagesFor,
  type MovePlanManifest,
  type MoveSideFacts,
  type MoveStageRule,
} from '../../src/compile/move/stages.js';
import { MOVE_DEFAULTS } from '../../src/compile/move/context.js';
import { movePlanHashOf } from '../../src/run/move-plan.js';
import type { MovePair } from './move-servers.js';

export const TOY_RUN_ID = 'toy1';
const STATE = `shadowpack.move_${TOY_RUN_ID}`;
const SRC = `shadowpack_src_${TOY_RUN_ID}`;
const SERVER = `shadowpack_${TOY_RUN_ID}`;
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Refuses unless this side's state is one the rule may start from. */
function guard(rule: MoveStageRule): string {
  if (rule.from === 'any') return '';
  const allowed = rule.from.map((s) => lit(s ?? '<none>')).join(', ');
  return `DO $g$ DECLARE s text; BEGIN
  IF to_regclass('${STATE}') IS NOT NULL THEN SELECT stage INTO s FROM ${STATE}; END IF;
  IF coalesce(s, '<none>') NOT IN (${allowed}) THEN
    RAISE EXCEPTION 'toy: ${rule.file} may not start from %', coalesce(s, '<none>');
  END IF;
END $g$;\n`;
}

/** Target only: refuses unless the source is where the rule needs it (read through postgres_fdw). */
function needs(rule: MoveStageRule): string {
  if (rule.needs === undefined) return '';
  const allowed = rule.needs.states.map(lit).join(', ');
  return `DO $n$ BEGIN
  IF (SELECT stage FROM ${SRC}.move_state) NOT IN (${allowed}) THEN RAISE EXCEPTION 'toy: ${rule.file} needs the source in ${rule.needs.states.join('/')}'; END IF;
END $n$;\n`;
}

const record = (stage: string) => `UPDATE ${STATE} SET stage = ${lit(stage)}, updated_at = now();\n`;
const recordSource = (stage: string, from: readonly string[]) =>
  `UPDATE ${SRC}.move_state SET stage = ${lit(stage)} WHERE stage IN (${[stage, ...from].map(lit).join(', ')});\n`;

function body(rule: MoveStageRule, pair: MovePair): string {
  const { host, port, dbname } = pair.sourceAddress;
  const src = new URL(pair.source.url);
  switch (`${rule.stage}.${rule.side}`) {
    case 'preflight.source':
    case 'preflight.target':
      return 'SELECT 1;\n';
    case 'setup.source':
      return `BEGIN;\n${guard(rule)}CREATE SCHEMA IF NOT EXISTS shadowpack;
CREATE TABLE ${STATE} (run_id text, plan_id text, stage text NOT NULL, updated_at timestamptz DEFAULT now());
INSERT INTO ${STATE} (run_id, plan_id, stage) VALUES (${lit(TOY_RUN_ID)}, 'toy', 'setup');\nCOMMIT;\n`;
    case 'setup.target':
      return `BEGIN;\n${guard(rule)}CREATE SCHEMA IF NOT EXISTS shadowpack;
CREATE SERVER ${SERVER} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ${lit(host)}, port ${lit(port)}, dbname ${lit(dbname)});
CREATE USER MAPPING FOR CURRENT_USER SERVER ${SERVER} OPTIONS (user ${lit(decodeURIComponent(src.username))}, password ${lit(decodeURIComponent(src.password))});
CREATE SCHEMA ${SRC};
CREATE FOREIGN TABLE ${SRC}.move_state (run_id text, plan_id text, stage text, updated_at timestamptz) SERVER ${SERVER} OPTIONS (schema_name 'shadowpack', table_name 'move_${TOY_RUN_ID}');
CREATE FOREIGN TABLE ${SRC}.t_1 (id integer, v text) SERVER ${SERVER} OPTIONS (schema_name 'app', table_name 'items');
${needs(rule)}CREATE SCHEMA IF NOT EXISTS app;
CREATE TABLE app.items (id integer, v text);
CREATE TABLE ${STATE} (run_id text, plan_id text, stage text NOT NULL, rounds bigint NOT NULL DEFAULT 0, rows_applied bigint NOT NULL DEFAULT 0, applied_snapshot text, updated_at timestamptz DEFAULT now());
INSERT INTO ${STATE} (run_id, plan_id, stage) VALUES (${lit(TOY_RUN_ID)}, 'toy', 'setup');\nCOMMIT;\n`;
    case 'backfill.target':
      return `BEGIN;\n${guard(rule)}DELETE FROM app.items;
INSERT INTO app.items SELECT id, v FROM ${SRC}.t_1;\n${record('backfill')}COMMIT;\n`;
    case 'build.target':
      return `BEGIN;\n${guard(rule)}${record('build')}COMMIT;\n`;
    case 'catchup.target':
      return `BEGIN;\n${guard(rule)}UPDATE ${STATE} SET rounds = rounds + 1, applied_snapshot = (SELECT 'toy');\n${record('catchup')}COMMIT;\n${recordSource('ready-for-fence', ['setup'])}`;
    case 'fence.source':
      return `BEGIN;\n${guard(rule)}${record('fenced')}COMMIT;\n`;
    case 'cutover.target':
      return `${guard(rule)}${needs(rule)}${recordSource('cutover-started', ['fenced'])}BEGIN;\n${guard(rule)}DELETE FROM app.items;
INSERT INTO app.items SELECT id, v FROM ${SRC}.t_1;\n${record('cutover')}COMMIT;\n${recordSource('cutover', ['cutover-started'])}`;
    case 'cleanup.target':
      return `${guard(rule)}${recordSource('cutover', ['cutover-started'])}BEGIN;\nDROP SCHEMA ${SRC} CASCADE;\nDROP SERVER ${SERVER} CASCADE;\nDROP TABLE ${STATE};\nCOMMIT;\n`;
    case 'cleanup.source':
      return `BEGIN;\n${guard(rule)}DROP TABLE ${STATE};\nCOMMIT;\n`;
    case 'abort.target':
      return `${guard(rule)}DO $r$ BEGIN IF to_regclass('${STATE}') IS NOT NULL THEN UPDATE ${STATE} SET stage = 'aborting'; END IF; END $r$;
DO $a$ BEGIN
  IF to_regclass('${SRC}.move_state') IS NOT NULL THEN UPDATE ${SRC}.move_state SET stage = 'target-aborted'; END IF;
END $a$;
BEGIN;\nDROP SCHEMA IF EXISTS ${SRC} CASCADE;\nDROP SERVER IF EXISTS ${SERVER} CASCADE;\nDROP TABLE IF EXISTS app.items;\nDROP TABLE IF EXISTS ${STATE};\nCOMMIT;\n`;
    case 'abort.source':
      return `BEGIN;\n${guard(rule)}DROP TABLE IF EXISTS ${STATE};\nCOMMIT;\n`;
    default:
      throw new Error(`toy plan: no body for ${rule.file}`);
  }
}

const facts = (database: string): MoveSideFacts => ({
  host: '127.0.0.1',
  port: null,
  database,
  databaseOid: 0,
  systemIdentifier: null,
  serverVersionNum: 0,
  encoding: 'UTF8',
});

/** Writes the toy plan into `dir`; the source must hold `app.items (id integer, v text)`. */
export function writeToyMovePlan(dir: string, pair: MovePair): MovePlanManifest {
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, string>();
  const bindingFor = (side: 'source' | 'target', db: string) =>
    `DO $b$ BEGIN IF current_database() <> ${lit(db)} THEN RAISE EXCEPTION 'toy: this script runs on the ${side} (database ${db}), not on %', current_database(); END IF; END $b$;\n`;
  files.set('binding.source.sql', bindingFor('source', pair.source.name));
  files.set('binding.target.sql', bindingFor('target', pair.target.name));
  for (const rule of moveStagesFor({})) {
    files.set(
      rule.file,
      `-- toy move plan: ${rule.summary}\n\\set ON_ERROR_STOP on\n\\ir binding.${rule.side}.sql\n${body(rule, pair)}`,
    );
  }
  const unhashed: Omit<MovePlanManifest, 'planHash'> = {
    kind: 'move',
    formatVersion: 1,
    tool: { name: 'shadowpack', version: 'toy' },
    runId: TOY_RUN_ID,
    planId: 'toy',
    tables: [
      {
        schema: 'app',
        name: 'items',
        key: ['id'],
        columns: [
          { name: 'id', type: 'integer' },
          { name: 'v', type: 'text' },
        ],
        n: 1,
        fingerprint: 'toy',
      },
    ],
    source: facts(pair.source.name),
    target: facts(pair.target.name),
    fdwAuth: 'password',
    options: MOVE_DEFAULTS,
    stages: moveStagesFor({}).map((r) => ({
      file: r.file,
      stage: r.stage,
      side: r.side,
      sha256: sha256(files.get(r.file)!),
      transaction: r.transaction,
      locks: [],
      hazards: [],
    })),
    bindings: {
      source: { file: 'binding.source.sql', sha256: sha256(files.get('binding.source.sql')!) },
      target: { file: 'binding.target.sql', sha256: sha256(files.get('binding.target.sql')!) },
    },
    readmeSha256: '',
  };
  const manifest: MovePlanManifest = { ...unhashed, planHash: movePlanHashOf(unhashed) };
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
