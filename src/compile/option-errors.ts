/** The flag a person typed for an option key: batchPages → --batch-pages. */
export function optionFlag(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** "--batch-pages must be …": named by its flag; a flag given twice (yargs makes it a list) said as such. */
export function optionValueError(key: string, value: unknown, want: string): string {
  if (Array.isArray(value))
    return `${optionFlag(key)} was given ${value.length} times (${value.map(String).join(', ')}); give it once, as ${want}`;
  return `${optionFlag(key)} must be ${want} (got ${String(value)})`;
}
