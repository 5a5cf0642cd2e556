import { describe, expect, it } from 'vitest';
import { markDollarTags, planDollarTag, withDollarTag } from '../../src/compile/dollar-tag.js';

// A rendered script: the templates' `$sp$` becomes NUL (what the helper renders).
const rendered = (template: string): string => markDollarTags(template).replaceAll('{{planDollarTag}}', '\u0000');

describe('the plan dollar tag', () => {
  it('is $sp$ when no body holds $sp, so plans without such text are unchanged', () => {
    // Text from a name that lies outside every body may hold it.
    const text = rendered('DO $sp$ BEGIN PERFORM 1; END $sp$;\n') + "SELECT '$sp$ outside any body';";
    const tag = planDollarTag([text]);
    expect(tag).toBe('$sp$');
    expect(withDollarTag(text, tag)).toBe("DO $sp$ BEGIN PERFORM 1; END $sp$;\nSELECT '$sp$ outside any body';");
  });

  it('is chosen over every script of the plan, and avoids a body ending in the tag without its closing $', () => {
    const a = rendered("DO $sp$ BEGIN PERFORM 'x$sp'; END $sp$;");
    const b = rendered("DO $sp$ BEGIN PERFORM '$sp1$'; END $sp$;");
    expect(planDollarTag([a])).toBe('$sp1$');
    expect(planDollarTag([a, b])).toBe('$sp2$');
    expect(withDollarTag(b, planDollarTag([a, b]))).toBe("DO $sp2$ BEGIN PERFORM '$sp1$'; END $sp2$;");
  });

  it('refuses a script whose tags do not pair up', () => {
    expect(() => planDollarTag([rendered('DO $sp$ BEGIN END;')])).toThrow(/unpaired/);
  });
});
