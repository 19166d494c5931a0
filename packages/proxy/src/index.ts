export * from './proxy.js';
export * from './log.js';
export * from './admin.js';
export * from './runtime/server.js';
export * from './runtime/backend.js';
export * from './http/head.js';
export * from './http/chunked.js';
