// [tls_reports]: TLS reporting when we send (RFC 8460; docs/delivery.md "TLS reporting (RFC
// 8460)"): the TLS outcome of every connection to a remote MX is counted per recipient domain
// and day, and a daily report goes to each domain that asks for one in `_smtp._tls.<domain>`.

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { duration } from './fields.ts';

export const tlsReportsSection = z
  .strictObject({
    /** Count TLS outcomes and send the daily reports. Mail through [delivery] relay is not
     *  counted: the relay delivers. */
    enabled: z.boolean().default(true),
    /** organization-name of the reports (RFC 8460 §4.1); empty: our hostname. */
    organization: z.string().max(200).default(''),
    /** contact-info of the reports (§4.1); empty: postmaster@<hostname>. */
    contact: z.string().max(200).default(''),
    /** How often the task looks for a finished day to report (a day is reported once). */
    check_interval: duration.prefault(`${LIMITS.tlsReports.defaultCheckIntervalMs / 1000}s`),
    /** PEM file of CAs trusted besides the system's for https: report endpoints (a private PKI,
     *  tests); relative to the config file. Empty: the system's CAs only. */
    ca_file: z.string().default(''),
  })
  .prefault({});
