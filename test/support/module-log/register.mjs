/**
 * Records every module a process loads (ESM resolution, which is how keelson and client-node
 * load): `NODE_OPTIONS=--import=<this file> KEELSON_MODULE_LOG=<file>` appends each resolved URL
 * to the file, one a line. Plain JavaScript, so that it works with and without tsx.
 */
import { register } from 'node:module';

if (process.env.KEELSON_MODULE_LOG) register('./hooks.mjs', import.meta.url);
