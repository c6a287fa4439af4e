// A node:test reporter that writes only the failed tests, after the run: file, test path and the
// error's first lines. scripts/test.sh prints it after the TAP stream, so a long CI log whose
// middle is cut still ends with what failed.
import type { TestEvent } from 'node:test/reporters';

interface Failure {
  file: string;
  path: string[];
  message: string;
}

const MESSAGE_LINES = 12;

function firstLines(error: unknown): string {
  const err = error as { cause?: unknown; message?: string; stack?: string } | undefined;
  // The runner wraps a failed test's error; the cause is what the test threw.
  const inner = (err?.cause ?? err) as { message?: string; stack?: string } | undefined;
  const text = inner?.stack ?? inner?.message ?? String(error);
  return text
    .split('\n')
    .filter((line) => !/\(node:(internal|async_hooks)/.test(line))
    .slice(0, MESSAGE_LINES)
    .join('\n');
}

export default async function* failuresReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const failures: Failure[] = [];
  // The names of the suites enclosing the current test, by nesting depth.
  const open: string[] = [];
  let total = 0;
  for await (const event of source) {
    if (event.type === 'test:start') {
      open[event.data.nesting] = event.data.name;
      open.length = event.data.nesting + 1;
    } else if (event.type === 'test:fail') {
      const data = event.data;
      const error = data.details.error as { failureType?: string } | undefined;
      // A suite fails when a test in it fails; count the tests, not their suites.
      if (error?.failureType === 'subtestsFailed') continue;
      total++;
      failures.push({
        file: data.file ?? '',
        path: [...open.slice(0, data.nesting), data.name],
        message: firstLines(data.details.error),
      });
    }
  }
  if (total === 0) {
    yield '== no test failed\n';
    return;
  }
  let out = `== ${total} failed test(s)\n`;
  for (const f of failures) {
    out += `\n-- ${f.file}\n   ${f.path.join(' > ')}\n`;
    out += `${f.message.replace(/^/gm, '   | ')}\n`;
  }
  yield out;
}
