/**
 * The gate the upload route calls before anything is stored. The role is declared once, beside the implementation
 * that validates in a separate process (control-tower/validation); routes and tests depend on the role only.
 */
export type { UploadValidator, ValidatedUpload as ValidatedBundle } from '../validation/upload-validator.ts';
