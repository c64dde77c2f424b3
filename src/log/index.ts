export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.js';
export { registerSecret, redactSecrets, redactDeep, encodedForms, StreamRedactor } from './secrets.js';
export { TerminalStatus, terminal } from './terminal.js';
