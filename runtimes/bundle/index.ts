/** Untrusted bundle zips: safe unpacking under limits, and the bundle they hold. */
export { DEFAULT_ZIP_LIMITS, zipLimits, type ZipLimits } from './zip-limits.ts';
export { unpackZip, type Unpacked } from './unpack-zip.ts';
export { MAX_MANIFEST_BYTES, namedFiles, openBundleZip } from './open-bundle.ts';
