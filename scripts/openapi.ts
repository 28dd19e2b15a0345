// Writes docs/openapi.json: the OpenAPI 3.1 document of the admin API, generated from its zod
// schemas (src/api/), exactly as the server serves it at /api/openapi.json.
// Run after changing an API schema: npm run openapi (test/api/openapi.test.ts fails until then).

import { writeFileSync } from 'node:fs';
import { openApiText } from '../src/api/app.ts';

const out = new URL('../docs/openapi.json', import.meta.url);
writeFileSync(out, await openApiText());
process.stdout.write(`wrote ${out.pathname}\n`);
