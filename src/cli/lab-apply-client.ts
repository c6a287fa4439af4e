/**
 * The command's side of `lab apply` through the lab's controller (src/lab/apply-protocol.ts). The
 * installed CLI tries it before it loads its bundle (bundle-loader.ts): a `lab apply` then costs
 * Node's start, reading the files and the controller's work, not the CLI's modules. Anything this
 * small parser does not know, or a lab without a listening controller, goes the usual way: the
 * full CLI, which applies in its own process.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import {
  type ApplyReply,
  type ApplyRequest,
  applySocketPath,
  type ManifestFile,
} from '../lab/apply-protocol.js';

/** The manifest files' texts (`-`: stdin); an error message names the file as the CLI reports it. */
export function readManifestFiles(names: readonly string[]): ManifestFile[] {
  return names.map((name) => {
    try {
      return { name, text: name === '-' ? readFileSync(0, 'utf8') : readFileSync(name, 'utf8') };
    } catch (e) {
      throw new Error(
        `-f ${name}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      );
    }
  });
}

/**
 * `lab apply`'s lab and files from the words after the program's name, when they are exactly
 * `lab apply` with -f/--filename (one or more files each), --name or --lab; else undefined.
 */
export function parseLabApply(argv: readonly string[]): { lab: string; files: string[] } | undefined {
  if (argv[0] !== 'lab' || argv[1] !== 'apply') return undefined;
  const files: string[] = [];
  let name: string | undefined;
  let lab: string | undefined;
  for (let i = 2; i < argv.length; ) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const opt = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = opt === a ? undefined : a.slice(eq + 1);
    if (opt === '-f' || opt === '--filename') {
      const before = files.length;
      if (inline !== undefined) files.push(inline);
      // a variadic option: the words up to the next option are files ("-" is stdin)
      for (i++; i < argv.length && (argv[i] === '-' || !argv[i]!.startsWith('-')); i++) files.push(argv[i]!);
      if (files.length === before) return undefined;
    } else if (opt === '--name' || opt === '--lab') {
      const v = inline ?? argv[i + 1];
      if (v === undefined || (inline === undefined && v.startsWith('-'))) return undefined;
      if (opt === '--name') name = v;
      else lab = v;
      i += inline === undefined ? 2 : 1;
    } else return undefined;
  }
  if (files.length === 0) return undefined;
  return { lab: name ?? lab ?? process.env.CILIUM_TS_LAB ?? 'default', files };
}

/**
 * Sends `lab apply` to the lab's controller and prints what it answers. Resolves to the command's
 * exit code, or undefined when no controller listens (nothing was read or sent: the caller applies
 * itself). `files` are read once connected, so stdin is read only when the controller takes it.
 */
export function applyThroughController(lab: string, files: readonly string[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = connect(applySocketPath(lab));
    let connected = false;
    let ended = false;
    const finish = (code: number) => {
      if (ended) return;
      ended = true;
      sock.destroy();
      resolve(code);
    };
    const fail = (message: string, stack?: string, code = 1) => {
      if (ended) return;
      process.stderr.write(`Error: ${message}\n`);
      if (process.env.CILIUM_TS_DEBUG && stack) process.stderr.write(`${stack}\n`);
      finish(code);
    };
    sock.on('error', (e) => {
      if (!connected) resolve(undefined);
      else fail(`the lab's controller connection failed: ${e.message}`);
    });
    sock.on('connect', () => {
      connected = true;
      let request: ApplyRequest;
      try {
        request = { files: readManifestFiles(files), cwd: process.cwd() };
      } catch (e) {
        fail((e as Error).message);
        return;
      }
      sock.write(`${JSON.stringify(request)}\n`);
    });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0 && !ended; nl = buf.indexOf('\n')) {
        let reply: ApplyReply;
        try {
          reply = JSON.parse(buf.slice(0, nl)) as ApplyReply;
        } catch {
          fail(`the lab's controller answered something that is not JSON`);
          return;
        }
        buf = buf.slice(nl + 1);
        if ('out' in reply) process.stdout.write(`${reply.out}\n`);
        else if (reply.error !== undefined) fail(reply.error, reply.stack, reply.exit);
        else finish(reply.exit);
      }
    });
    sock.on('close', () => {
      if (connected && !ended)
        fail(`the lab's controller closed the connection before the apply finished (see its controller.log)`);
    });
  });
}

/** The installed CLI's fast path: the exit code of a `lab apply` the controller ran, or undefined. */
export function fastLabApply(argv: readonly string[]): Promise<number | undefined> {
  const cmd = parseLabApply(argv);
  if (cmd === undefined) return Promise.resolve(undefined);
  // as the full CLI (main.ts): output piped into `head` that stops reading is no error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  return applyThroughController(cmd.lab, cmd.files);
}
