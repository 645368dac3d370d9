/** Upload validation: the gate a bundle passes before the control tower stores anything. */
export { createUploadValidator, type UploadValidator, type UploadValidatorOptions, type ValidatedUpload } from './upload-validator.ts';
