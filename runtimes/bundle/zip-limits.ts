/** Limits on an untrusted bundle zip, with their defaults. Every limit is checked against bytes actually read. */
export interface ZipLimits {
  /** Largest zip, bytes (default 256 MiB). */
  readonly maxZipBytes: number;
  /** Most entries, directories included (default 1000). */
  readonly maxEntries: number;
  /** Largest uncompressed entry, bytes (default 512 MiB). */
  readonly maxEntryBytes: number;
  /** Most uncompressed bytes, all entries together (default 1 GiB). */
  readonly maxTotalBytes: number;
  /** Largest uncompressed / compressed ratio, per entry and overall, applied above 1 MiB (default 200). */
  readonly maxRatio: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = Object.freeze({
  maxZipBytes: 256 * 1024 * 1024,
  maxEntries: 1000,
  maxEntryBytes: 512 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
  maxRatio: 200,
});

export function zipLimits(over: Partial<ZipLimits> = {}): ZipLimits {
  return { ...DEFAULT_ZIP_LIMITS, ...over };
}
