import { runCli } from './program.js';

const status = await runCli(process.argv.slice(2));
// Let pending log writes flush; long-running commands never get here until they stop.
process.exitCode = status;
