// The hashing worker thread: computes SHA-512-crypt (pure JavaScript, up to a million rounds) off
// the server's event loop. One message in ({ id, plain, setting }), one out ({ id, hash }).

import { parentPort } from 'node:worker_threads';
import { sha512Crypt } from './sha512-crypt.ts';

parentPort?.on('message', (m: { id: number; plain: string; setting: string }) => {
  let hash: string | null = null;
  try {
    hash = sha512Crypt(m.plain, m.setting);
  } catch {
    hash = null;
  }
  parentPort?.postMessage({ id: m.id, hash });
});
