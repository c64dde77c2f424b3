/** The resolve hook of register.mjs (runs on node's module-loader thread). */
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.KEELSON_MODULE_LOG, `${result.url}\n`);
  return result;
}
