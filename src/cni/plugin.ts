#!/usr/bin/env node
/** CNI plugin executable: reads the network configuration on stdin, prints a result or error object. */
import { runPlugin } from './plugin-core.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  let stdin = '';
  try {
    stdin = await readStdin();
  } catch (e) {
    process.stdout.write(
      `${JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: 'failed to read stdin', details: (e as Error).message })}\n`,
    );
    process.exitCode = 1;
    return;
  }
  const out = await runPlugin({ env: process.env, stdin });
  if (out.stdout) process.stdout.write(out.stdout);
  process.exitCode = out.exitCode;
}

void main();
