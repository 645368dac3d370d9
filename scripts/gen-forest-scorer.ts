/**
 * Compiles runtimes/onnx/forest-scorer.wat into runtimes/onnx/forest-scorer.wasm.ts, the module's bytes as base64
 * (`npm run gen:forest-scorer`; wabt, a development dependency, assembles the text format).
 * test/runtimes/onnx-forest.test.ts fails when the committed bytes differ from what this writes.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FOREST_SCORER_MODULE, forestScorerModuleText } from './forest-scorer-wasm.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
writeFileSync(`${root}${FOREST_SCORER_MODULE}`, await forestScorerModuleText());
process.stdout.write(`wrote ${FOREST_SCORER_MODULE}\n`);
