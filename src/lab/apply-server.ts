/**
 * The controller's side of `lab apply` (apply-protocol.ts): it applies the manifests a command
 * sends, with the same code and the same lock as a command applying itself, one request at a time,
 * and streams back each line the command prints and how it ended.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { parseManifestFiles } from '../k8s/objects.js';
import { type ApplyReply, type ApplyRequest, applySocketPath, MAX_APPLY_REQUEST } from './apply-protocol.js';
import { apply } from './lab.js';

function validRequest(x: unknown): x is ApplyRequest {
  const r = x as ApplyRequest;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.cwd === 'string' &&
    Array.isArray(r.files) &&
    r.files.every((f) => typeof f?.name === 'string' && typeof f.text === 'string')
  );
}

async function serve(lab: string, req: ApplyRequest, sock: Socket): Promise<void> {
  const send = (m: ApplyReply) => {
    if (!sock.destroyed) sock.write(`${JSON.stringify(m)}\n`);
  };
  const own = process.cwd();
  try {
    try {
      process.chdir(req.cwd); // pods' processes start where the command was run
    } catch {
      // a directory gone since: they start where the controller is
    }
    await apply(lab, parseManifestFiles(req.files), (line) => send({ out: line }));
    send({ exit: 0 });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ exit: 1, error: err.message, ...(err.stack ? { stack: err.stack } : {}) });
  } finally {
    process.chdir(own);
    sock.end();
  }
}

/** Listens on the lab's apply socket (replacing a stale one); requests are served in turn. */
export function serveApply(lab: string, log: (line: string) => void): Server {
  const path = applySocketPath(lab);
  let turn = Promise.resolve();
  const server = createServer((sock) => {
    sock.on('error', () => {}); // a command interrupted: its apply still completes
    sock.setEncoding('utf8');
    let buf = '';
    const onData = (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_APPLY_REQUEST) sock.destroy();
        return;
      }
      sock.off('data', onData);
      let req: unknown;
      try {
        req = JSON.parse(buf.slice(0, nl));
      } catch {
        req = undefined;
      }
      if (!validRequest(req)) {
        sock.end(
          `${JSON.stringify({ exit: 1, error: 'malformed lab apply request' } satisfies ApplyReply)}\n`,
        );
        return;
      }
      turn = turn.then(() => serve(lab, req, sock));
    };
    sock.on('data', onData);
  });
  server.on('error', (e) => log(`lab apply socket ${path}: ${e.message}`));
  rmSync(path, { force: true });
  server.listen(path);
  return server;
}
