/**
 * Worker side of `loadConfigAsync` for native files: parses `workerData.text` with the YAML
 * library off the node's event loop and posts back a `WorkerAnswer`. Runs only as a worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, StickmeshError } from '../errors.js';
import { parseConfigText, type WorkerAnswer, type WorkerJob } from './load.js';

const job = workerData as WorkerJob;
let answer: WorkerAnswer;
try {
  const r = parseConfigText(job.text, job.file, 'native', job.env);
  answer = { kind: 'ok', loaded: r };
} catch (err) {
  if (err instanceof ConfigError) answer = { kind: 'invalid', issues: err.issues, total: err.total, warnings: err.warnings, warningCount: err.warningCount };
  else answer = { kind: 'error', code: err instanceof StickmeshError ? err.code : 'SM_CONFIG_INVALID', message: (err as Error).message };
}
parentPort!.postMessage(answer);
