/**
 * The control tower from the command line: publish bundles and move versions between cells.
 *
 *   sibyl bundle DIR -o FILE.zip                       zip a bundle directory (deterministic)
 *   sibyl upload FILE.zip|DIR [--default] [--cells a,b|all]
 *   sibyl models [NAME]            sibyl version NAME VERSION          sibyl download NAME VERSION -o FILE
 *   sibyl default NAME VERSION [--cells]               sibyl alias NAME ALIAS VERSION [--cells] | --delete
 *   sibyl deploy|undeploy NAME VERSION --cells a,b|all sibyl retire NAME VERSION
 *   sibyl split NAME VERSION=WEIGHT[:ARM]... [--cells] sibyl shadows NAME [MODEL/]VERSION... [--cells]
 *   sibyl cells [CELL]             sibyl audit [--limit N]             sibyl shadows-report NAME
 *
 * --tower (SIBYL_TOWER_URL, default http://127.0.0.1:8090) and --token (SIBYL_TOKEN) on every command.
 * Output: JSON on stdout; failures as `sibyl: CODE: message` on stderr with exit status 1.
 */
import type { Stats } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Command, Option } from 'commander';
import { MANIFEST_FILES } from '../runtimes/manifest.ts';
import { zipDirectory } from '../runtimes/bundle/zip-dir.ts';
import { towerCall, type TowerOptions } from './tower-client.ts';

type Opts = TowerOptions & Record<string, unknown>;

const print = (v: unknown) => void process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
const cells = (v: unknown) => (v === undefined ? undefined : v === 'all' ? 'all' : String(v).split(',').map((s) => s.trim()).filter(Boolean));
const enc = encodeURIComponent;

/** stat, with a one-line message for a path that is missing or unreadable. */
async function readable(path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new Error(code === 'ENOENT' ? `${path}: no such file or directory` : `${path}: cannot read (${code ?? (err as Error).message})`);
  }
}

/** Writes an output file, creating its directory first. */
export async function writeOutput(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

export function withTower(cmd: Command): Command {
  return cmd
    .addOption(new Option('--tower <url>', 'control tower URL').env('SIBYL_TOWER_URL').default('http://127.0.0.1:8090'))
    .addOption(new Option('--token <token>', 'bearer token').env('SIBYL_TOKEN'));
}

export function towerCommands(): Command[] {
  const list: Command[] = [];
  const add = (cmd: Command) => list.push(withTower(cmd));

  list.push(
    new Command('bundle')
      .description('zip a bundle directory (deterministic: the same files give the same hash)')
      .argument('<dir>')
      .requiredOption('-o, --output <file>', 'zip to write')
      .action(async (dir: string, o: { output: string }) => {
        if (!(await readable(dir)).isDirectory()) throw new Error(`bundle: ${dir} is not a directory`);
        const names = await readdir(dir);
        if (!MANIFEST_FILES.some((m) => names.includes(m))) throw new Error(`bundle: ${dir} has no manifest (${MANIFEST_FILES.join(', ')}) at its root`);
        const zip = await zipDirectory(dir);
        await writeOutput(o.output, zip);
        process.stdout.write(`wrote ${o.output} (${zip.byteLength} bytes)\n`);
      }),
  );

  add(
    new Command('upload')
      .description('publish a bundle (a zip, or a directory zipped on the fly); validated before anything is stored')
      .argument('<bundle>', 'FILE.zip or a bundle directory')
      .option('--default', 'make it the default version (also when the manifest says default: true)')
      .option('--cells <cells>', 'deploy to these cells (comma-separated, or "all")')
      .action(async (bundle: string, o: Opts) => {
        const zip = (await readable(bundle)).isDirectory() ? await zipDirectory(bundle) : await readFile(bundle);
        const q = new URLSearchParams();
        if (o.default) q.set('default', 'true');
        if (o.cells) q.set('cells', String(o.cells));
        print(await towerCall(o, 'POST', `/v1/models${q.size ? `?${q}` : ''}`, { bytes: zip, type: 'application/zip' }));
      }),
  );
  add(
    new Command('models')
      .description('list models, or show one (versions, cells, defaults, aliases, splits, shadows)')
      .argument('[name]')
      .action(async (name: string | undefined, o: Opts) => print(await towerCall(o, 'GET', name ? `/v1/models/${enc(name)}` : '/v1/models'))),
  );
  add(
    new Command('version')
      .description('show a version and its manifest')
      .argument('<name>')
      .argument('<version>')
      .action(async (name: string, version: string, o: Opts) => print(await towerCall(o, 'GET', `/v1/models/${enc(name)}/versions/${enc(version)}`))),
  );
  add(
    new Command('download')
      .description("download a version's bundle zip")
      .argument('<name>')
      .argument('<version>')
      .requiredOption('-o, --output <file>', 'zip to write')
      .action(async (name: string, version: string, o: Opts) => {
        const bytes = (await towerCall(o, 'GET', `/v1/models/${enc(name)}/versions/${enc(version)}/bundle`)) as Uint8Array;
        await writeOutput(String(o.output), bytes);
        process.stdout.write(`wrote ${String(o.output)} (${bytes.byteLength} bytes)\n`);
      }),
  );
  add(
    new Command('default')
      .description('make a version the default (deploying it where needed)')
      .argument('<name>')
      .argument('<version>')
      .option('--cells <cells>', 'cells (default: every cell where the model is deployed)')
      .action(async (name: string, version: string, o: Opts) => print(await towerCall(o, 'PUT', `/v1/models/${enc(name)}/default`, { json: { version, cells: cells(o.cells) } }))),
  );
  add(
    new Command('alias')
      .description('point an alias at a version, or delete it')
      .argument('<name>')
      .argument('<alias>')
      .argument('[version]')
      .option('--cells <cells>', 'cells (default: every cell where the model is deployed)')
      .option('--delete', 'delete the alias')
      .action(async (name: string, alias: string, version: string | undefined, o: Opts) => {
        const path = `/v1/models/${enc(name)}/aliases/${enc(alias)}`;
        if (o.delete) return print(await towerCall(o, 'DELETE', `${path}${o.cells ? `?cells=${enc(String(o.cells))}` : ''}`));
        if (!version) throw new Error('alias: name the version (or --delete)');
        print(await towerCall(o, 'PUT', path, { json: { version, cells: cells(o.cells) } }));
      }),
  );
  for (const verb of ['deploy', 'undeploy'] as const) {
    add(
      new Command(verb)
        .description(`${verb} a version in cells`)
        .argument('<name>')
        .argument('<version>')
        .requiredOption('--cells <cells>', 'comma-separated cells, or "all"')
        .action(async (name: string, version: string, o: Opts) => print(await towerCall(o, 'POST', `/v1/models/${enc(name)}/versions/${enc(version)}:${verb}`, { json: { cells: cells(o.cells) } }))),
    );
  }
  add(
    new Command('retire')
      .description('retire a version: undeployed everywhere, never deployed again')
      .argument('<name>')
      .argument('<version>')
      .action(async (name: string, version: string, o: Opts) => print(await towerCall(o, 'POST', `/v1/models/${enc(name)}/versions/${enc(version)}:retire`))),
  );
  add(
    new Command('split')
      .description('set the traffic split of requests that name no version (no arms: remove it)')
      .argument('<name>')
      .argument('[arms...]', 'VERSION=WEIGHT or VERSION=WEIGHT:ARM')
      .option('--cells <cells>', 'cells (default: every cell where the model is deployed)')
      .action(async (name: string, arms: string[], o: Opts) => {
        const parsed = arms.map((a) => {
          const m = /^([^=]+)=([0-9.]+)(?::(.+))?$/.exec(a);
          if (!m) throw new Error(`split: "${a}" is not VERSION=WEIGHT[:ARM]`);
          return { version: m[1]!, weight: Number(m[2]), ...(m[3] ? { arm: m[3] } : {}) };
        });
        print(await towerCall(o, 'PUT', `/v1/models/${enc(name)}/split`, { json: { arms: parsed, cells: cells(o.cells) } }));
      }),
  );
  add(
    new Command('shadows')
      .description('set the shadows of a model (none: remove them)')
      .argument('<name>')
      .argument('[targets...]', 'VERSION of this model, or MODEL/VERSION')
      .option('--cells <cells>', 'cells (default: every cell where the model is deployed)')
      .action(async (name: string, targets: string[], o: Opts) => {
        const shadows = targets.map((t) => (t.includes('/') ? { model: t.slice(0, t.indexOf('/')), version: t.slice(t.indexOf('/') + 1) } : { version: t }));
        print(await towerCall(o, 'PUT', `/v1/models/${enc(name)}/shadows`, { json: { shadows, cells: cells(o.cells) } }));
      }),
  );
  add(
    new Command('shadows-report')
      .description('the live-versus-shadow comparison of a model, as each gateway replica last reported it')
      .argument('<name>')
      .action(async (name: string, o: Opts) => print(await towerCall(o, 'GET', `/v1/models/${enc(name)}/shadows`))),
  );
  add(
    new Command('cells')
      .description('list cells, or show one: desired state against what each replica has loaded')
      .argument('[cell]')
      .action(async (cell: string | undefined, o: Opts) => print(await towerCall(o, 'GET', cell ? `/v1/cells/${enc(cell)}` : '/v1/cells'))),
  );
  add(
    new Command('audit')
      .description('the audit log, newest first')
      .option('--limit <n>', 'entries', '50')
      .action(async (o: Opts) => print(await towerCall(o, 'GET', `/v1/audit?limit=${enc(String(o.limit))}`))),
  );
  return list;
}
