/**
 * Layering lint (run by `npm run lint` after biome): parses the imports of every file under src/ and
 * fails, naming file, line and rule, when a module imports what its layer may not.
 *
 * Layers, lowest first. A module may import its own layer and the layers below, never one above:
 *
 *   layer            folders under src/                                          role
 *   0 library        ebpf                                                        generic eBPF library: imports nothing of the project
 *   0 base           common                                                      helpers every layer uses: imports nothing of the project
 *   1 core           labels identity policy ipam k8s statedb hive ipcache         control-plane logic and state (pure, see below)
 *                    kvstore node
 *   2 datapath       datapath                                                    BPF maps, loader, Linux plumbing
 *   3 subsystems     endpoint hubble cni conntrack workload                      services built on the core and the datapath
 *   4 api            api                                                         the agent's REST API: types, codes, client
 *   5 agent          agent                                                       one node's agent: wires the cells, serves the API
 *   6 lab            lab                                                         the local cluster: spawns agents, drives their API
 *   7 cli            cli                                                         the `cilium-ts` command
 *
 * Further rules:
 * - Pure modules do no I/O: they import no I/O module of Node (fs, net, http, child_process, dgram,
 *   ...), no I/O package (koffi, grpc, pino, prom-client, commander) and nothing at run time from a
 *   module that is not pure (type-only imports are fine: they vanish at run time). Pure: the base,
 *   every core folder except the files in PURE_EXCEPTIONS, the datapath's generated layouts and
 *   codecs, and Hubble's parser, filters, printers and flow ring (PURE_FILES).
 * - Only the CLI imports commander (libraries such as Hubble must not pull in a CLI framework).
 * - A folder under src/ that is in no layer is an error: add it to LAYERS.
 *
 * Usage: node dist/scripts/check-layers.js [repository root]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const LAYERS: Readonly<Record<string, { rank: number; layer: string }>> = {
  ebpf: { rank: 0, layer: 'library' },
  common: { rank: 0, layer: 'base' },
  labels: { rank: 1, layer: 'core' },
  identity: { rank: 1, layer: 'core' },
  policy: { rank: 1, layer: 'core' },
  ipam: { rank: 1, layer: 'core' },
  k8s: { rank: 1, layer: 'core' },
  statedb: { rank: 1, layer: 'core' },
  hive: { rank: 1, layer: 'core' },
  ipcache: { rank: 1, layer: 'core' },
  kvstore: { rank: 1, layer: 'core' },
  node: { rank: 1, layer: 'core' },
  service: { rank: 1, layer: 'core' },
  fqdn: { rank: 1, layer: 'core' },
  datapath: { rank: 2, layer: 'datapath' },
  endpoint: { rank: 3, layer: 'subsystems' },
  hubble: { rank: 3, layer: 'subsystems' },
  cni: { rank: 3, layer: 'subsystems' },
  conntrack: { rank: 3, layer: 'subsystems' },
  workload: { rank: 3, layer: 'subsystems' },
  dns: { rank: 3, layer: 'subsystems' },
  proxy: { rank: 3, layer: 'subsystems' },
  api: { rank: 4, layer: 'api' },
  agent: { rank: 5, layer: 'agent' },
  lab: { rank: 6, layer: 'lab' },
  cli: { rank: 7, layer: 'cli' },
};

/** Modules that import nothing of the project but themselves. */
const ISOLATED = new Set(['ebpf', 'common']);

/** Folders whose every file is pure, and the files of other folders that are. */
const PURE_FOLDERS = new Set(['common', ...Object.keys(LAYERS).filter((m) => LAYERS[m]!.layer === 'core')]);
const PURE_FILES = new Set([
  'datapath/maps/codec.ts',
  'datapath/maps/generated/layouts.ts',
  'hubble/constants.ts',
  'hubble/errors.ts',
  'hubble/filter.ts',
  'hubble/format.ts',
  'hubble/layout.ts',
  'hubble/parser.ts',
  'hubble/ring.ts',
  'hubble/types.ts',
]);
/** Files of pure folders that do I/O on purpose (persistence of a pure module's state, the etcd client). */
const PURE_EXCEPTIONS = new Set(['ipam/store.ts', 'ipam/index.ts', 'kvstore/etcd.ts']);

const IO_BUILTINS = new Set([
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'child_process',
  'dgram',
  'dns',
  'dns/promises',
  'tls',
  'worker_threads',
  'cluster',
  'readline',
  'inspector',
]);
const IO_PACKAGES = new Set([
  'koffi',
  'etcd3',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'pino',
  'prom-client',
  'commander',
]);

export interface ImportRef {
  specifier: string;
  line: number;
  typeOnly: boolean;
}

export interface Violation {
  file: string;
  line: number;
  specifier: string;
  rule: string;
}

/** Every import, re-export and dynamic import() of a TypeScript source text. */
export function importsOf(fileName: string, text: string): ImportRef[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: ImportRef[] = [];
  const add = (spec: ts.Expression, node: ts.Node, typeOnly: boolean) => {
    if (!ts.isStringLiteralLike(spec)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ specifier: spec.text, line, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named =
        c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const allTypes =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            named !== undefined &&
            named.length > 0 &&
            named.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, node, allTypes);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const named =
        node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      const allTypes =
        node.isTypeOnly || (named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, node, allTypes);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined
    ) {
      add(node.arguments[0], node, false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, node, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** `hubble/parser.ts` → `hubble`. */
function moduleOf(srcPath: string): string {
  return srcPath.split('/')[0]!;
}

function isPure(srcPath: string): boolean {
  if (PURE_FILES.has(srcPath)) return true;
  return PURE_FOLDERS.has(moduleOf(srcPath)) && !PURE_EXCEPTIONS.has(srcPath);
}

/** Checks one file. `srcPath` is relative to src/ with forward slashes, e.g. `policy/parse.ts`. */
export function checkFile(srcPath: string, text: string): Violation[] {
  const out: Violation[] = [];
  const mod = moduleOf(srcPath);
  const me = LAYERS[mod];
  const where = (i: ImportRef, rule: string) =>
    out.push({ file: `src/${srcPath}`, line: i.line, specifier: i.specifier, rule });
  if (!srcPath.includes('/')) {
    out.push({
      file: `src/${srcPath}`,
      line: 1,
      specifier: '',
      rule: 'files belong in a module folder under src/',
    });
    return out;
  }
  if (!me) {
    out.push({
      file: `src/${srcPath}`,
      line: 1,
      specifier: '',
      rule: `module "${mod}" is in no layer: add it to LAYERS in scripts/check-layers.ts`,
    });
    return out;
  }
  const pure = isPure(srcPath);
  for (const i of importsOf(srcPath, text)) {
    const spec = i.specifier;
    if (!spec.startsWith('.')) {
      const bare = spec.replace(/^node:/, '');
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (pkg === 'commander' && mod !== 'cli')
        where(i, 'only src/cli may import commander (a library must not need a CLI framework)');
      else if (
        pure &&
        !i.typeOnly &&
        (IO_BUILTINS.has(bare) || (spec.startsWith('node:') && IO_BUILTINS.has(bare)))
      )
        where(i, `${srcPath} is pure (no I/O) but imports the I/O module ${spec}`);
      else if (pure && !i.typeOnly && IO_PACKAGES.has(pkg))
        where(i, `${srcPath} is pure (no I/O) but imports ${pkg}`);
      continue;
    }
    const target = relative('/src', resolve('/src', dirname(srcPath), spec)).replace(/\\/g, '/');
    if (target.startsWith('..')) {
      where(i, 'imports a file outside src/');
      continue;
    }
    const tmod = moduleOf(target);
    if (tmod !== mod) {
      const them = LAYERS[tmod];
      if (ISOLATED.has(mod)) {
        where(i, `src/${mod} (${me.layer}) imports nothing of the project, but this imports src/${tmod}`);
        continue;
      }
      if (!them) {
        where(i, `imports src/${tmod}, which is in no layer`);
        continue;
      }
      if (them.rank > me.rank) {
        where(
          i,
          `src/${mod} (layer ${me.rank} ${me.layer}) imports src/${tmod} (layer ${them.rank} ${them.layer}): lower layers never import higher ones`,
        );
        continue;
      }
    }
    if (pure && !i.typeOnly && !isPure(target.replace(/\.js$/, '.ts')))
      where(
        i,
        `${srcPath} is pure (no I/O) but imports src/${target}, which is not (a type-only import would be fine)`,
      );
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Checks every .ts file under ROOT/src. */
export function checkLayers(root: string): Violation[] {
  const src = join(root, 'src');
  return sourceFiles(src)
    .sort()
    .flatMap((f) => checkFile(relative(src, f).replace(/\\/g, '/'), readFileSync(f, 'utf8')));
}

export function formatViolation(v: Violation): string {
  return `${v.file}:${v.line}: ${v.specifier ? `import '${v.specifier}': ` : ''}${v.rule}`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Compiled to <out dir>/scripts/: the repository is two levels up unless given.
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('../../', import.meta.url)));
  const violations = checkLayers(root);
  for (const v of violations) process.stderr.write(`${formatViolation(v)}\n`);
  if (violations.length > 0) {
    process.stderr.write(
      `check-layers: ${violations.length} layering violation(s); see scripts/check-layers.ts\n`,
    );
    process.exit(1);
  }
  process.stdout.write('check-layers: imports follow the layers\n');
}
