// Loading and validating the configuration. Every error names the file, the key path and what
// is wrong, e.g. `/etc/arcline.toml: smtp.max_message_size: not a size: "fifty"`, and stops
// start-up (ArclineError code CONFIG).

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ArclineError } from '../core/errors.ts';
import { type Config, configSchema } from './schema.ts';

export interface LoadedConfig {
  readonly config: Config;
  /** The file read, or null when the embedded defaults apply. */
  readonly file: string | null;
}

/** The config file named by --config, else ARCLINE_CONFIG, else none (embedded defaults). */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  return flag ?? (env.ARCLINE_CONFIG || null);
}

export function loadConfig(file: string | null): LoadedConfig {
  if (file === null) return { config: finish(validate({}, '(defaults)'), process.cwd()), file: null };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ArclineError('CONFIG', `${file}: cannot read the config file (${code ?? String(e)})`);
  }
  return { config: parseConfigText(text, file), file };
}

/** Parses TOML text; relative paths in it are taken relative to the file's directory. */
export function parseConfigText(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0] ?? e.message;
      throw new ArclineError('CONFIG', `${file}:${e.line}:${e.column}: TOML syntax error: ${first}`);
    }
    throw e;
  }
  return finish(validate(raw, file), dirname(resolve(file)));
}

function validate(raw: unknown, file: string): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `${file}: ${describeIssue(issue)}`);
  throw new ArclineError('CONFIG', lines.join('\n'));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${path ? `${path}.` : ''}${k}: unknown key`).join('; ');
  }
  if (issue.code === 'invalid_type') {
    const got = issue.input === undefined ? 'nothing' : Array.isArray(issue.input) ? 'array' : typeof issue.input;
    return `${path || '(top level)'}: expected ${issue.expected}, got ${got}`;
  }
  return `${path || '(top level)'}: ${issue.message}`;
}

function finish(config: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...config,
    storage: { maildir: abs(config.storage.maildir), state: abs(config.storage.state) },
    tls: {
      ...(config.tls.cert !== undefined ? { cert: abs(config.tls.cert) } : {}),
      ...(config.tls.key !== undefined ? { key: abs(config.tls.key) } : {}),
    },
    delivery: {
      ...config.delivery,
      relay_password_file: config.delivery.relay_password_file && abs(config.delivery.relay_password_file),
    },
    database: {
      ...config.database,
      password_file: config.database.password_file && abs(config.database.password_file),
    },
    cluster: { ...config.cluster, shared_dir: config.cluster.shared_dir && abs(config.cluster.shared_dir) },
    greylist: {
      ...config.greylist,
      allowlist_file: config.greylist.allowlist_file && abs(config.greylist.allowlist_file),
    },
    mta_sts_outbound: {
      ...config.mta_sts_outbound,
      ca_file: config.mta_sts_outbound.ca_file && abs(config.mta_sts_outbound.ca_file),
    },
    tls_reports: { ...config.tls_reports, ca_file: config.tls_reports.ca_file && abs(config.tls_reports.ca_file) },
    sieve: {
      ...config.sieve,
      before: config.sieve.before && abs(config.sieve.before),
      global_dir: config.sieve.global_dir && abs(config.sieve.global_dir),
    },
  };
}
