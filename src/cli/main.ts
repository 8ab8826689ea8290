// `taskwarden` as a process: run the command line, exit with its code.
import { run } from "./program.ts";

const code = await run(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});
// Let stdout drain (piped output) before leaving.
process.exitCode = code;
