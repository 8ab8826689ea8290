// `taskwarden` as a process: run the command line, exit with its code.
import { run } from "./program.ts";

// `taskwarden workers list | head` closes the pipe early: that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await run(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});
// Let stdout drain (piped output) before leaving.
process.exitCode = code;
