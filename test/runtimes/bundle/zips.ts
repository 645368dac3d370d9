/** The zip builders and hostile corpus live with the upload validator's tests; re-exported for older imports. */
export * from '../../control-tower/validation/hostile-zips.ts';
