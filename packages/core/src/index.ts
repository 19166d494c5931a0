export * from './config/model.js';
export * from './errors.js';
export * from './balance/types.js';
export * from './util/timer-wheel.js';
