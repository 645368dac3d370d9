/**
 * Bundles: untrusted zips unpacked safely under limits and the bundle they hold; a bundle directory zipped
 * deterministically; a models directory read as a cell's desired state.
 */
export { DEFAULT_ZIP_LIMITS, zipLimits, type ZipLimits } from './zip-limits.ts';
export { unpackZip, type Unpacked } from './unpack-zip.ts';
export { MAX_MANIFEST_BYTES, namedFiles, openBundleZip } from './open-bundle.ts';
export { zipDirectory } from './zip-dir.ts';
export { readModelsDir, type DirBundle, type ModelsDir } from './models-dir.ts';
