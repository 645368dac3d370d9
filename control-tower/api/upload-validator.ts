/**
 * The gate the upload route calls before anything is stored: the API's own view of it, so the routes depend on a
 * role, not on the implementation (control-tower/validation builds one that validates in a separate process).
 */
import type { Manifest } from '../../runtimes/manifest.ts';

export interface ValidatedBundle {
  readonly manifest: Manifest;
  /** sha256 of the zip, 64 lowercase hex digits. */
  readonly sha256: string;
  /** Size of the zip, bytes. */
  readonly sizeBytes: number;
}

export interface UploadValidator {
  /**
   * Resolves when the bundle is acceptable. Rejects with INVALID_ARGUMENT and a message that says exactly what was
   * wrong, or RESOURCE_EXHAUSTED when the validation ran out of memory or time. Stores nothing.
   */
  validate(zip: Buffer): Promise<ValidatedBundle>;
  /** Stops validations still running. */
  close(): Promise<void>;
}
