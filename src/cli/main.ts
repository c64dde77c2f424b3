import { setFlagsFromString } from 'node:v8';
import { runCli } from './program.js';

// undici parses HTTP with llhttp compiled to WebAssembly. Once a large response (a page of a
// list) makes it hot, V8 recompiles it with TurboFan, which takes ~35 MiB for a moment: the
// daemon's peak RSS. Its baseline (Liftoff) code parses as fast for responses of this size.
// Set before the first connection compiles the module; node refuses the flag in NODE_OPTIONS.
setFlagsFromString('--liftoff-only');

const status = await runCli(process.argv.slice(2));
// Let pending log writes flush; long-running commands never get here until they stop.
process.exitCode = status;
