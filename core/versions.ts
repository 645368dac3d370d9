/** How versions sort, wherever one is picked as "the highest" (a default when none is named, a fallback). */

/** Natural order: "2" < "10", "1.2" < "1.10"; negative, 0 or positive as for Array.prototype.sort. */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
