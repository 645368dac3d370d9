/** Upload validation: the gate a bundle passes before the control tower stores anything. */
export { createUploadValidator, type Check, type UploadValidator, type UploadValidatorOptions, type ValidatedUpload, type Verdict } from './upload-validator.ts';
