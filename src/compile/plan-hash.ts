import { createHash } from 'node:crypto';
import { canonicalJson } from '../model/normalise.js';
import type { PlanManifest } from './compile.js';

// A leaf apart from compile.ts: the runner checks plans with these, and importing the compiler
// for them loaded every template module and Handlebars into each `run` (about 0.1 s of startup).

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The plan hash: over the manifest without it, so any edit to a script or option shows. Provenance
 * is left out: it changes nothing that runs, and with it no two plans would ever have the same hash.
 */
export function planHashOf(manifest: Omit<PlanManifest, 'planHash'>): string {
  const { provenance: _, ...hashed } = manifest;
  return 'p1:' + sha256(canonicalJson(hashed));
}
