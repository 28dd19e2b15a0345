// [dmarc_reports]: DMARC aggregate reports we send (RFC 7489 §7, src/reports/dmarc-*.ts,
// docs/delivery.md "DMARC aggregate reports"). Its own file, as [monitor].

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { duration } from './fields.ts';

export const dmarcReportsSection = z
  .strictObject({
    /** Record the DMARC evaluations of inbound mail whose domain asks for aggregate reports
     *  (rua), and send each domain its report for every UTC day. On by default, as the TLS
     *  reports ([tls_reports]): a receiver that reports is what lets domain owners move to
     *  p=reject safely. */
    enabled: z.boolean().default(true),
    /** report_metadata org_name: who we are; empty (the default): the hostname. */
    org_name: z.string().max(200).default(''),
    /** report_metadata email, and the From: of the reports; empty (the default):
     *  noreply-dmarc@ the hostname. Replies to reports are not read by arcline. */
    email: z
      .string()
      .regex(/^$|^[^\s@<>"]+@[A-Za-z0-9.-]+$/, 'not an email address')
      .default(''),
    /** How often the task looks for a complete UTC day not yet reported. */
    interval: duration.default(LIMITS.dmarcReports.defaultIntervalMs),
  })
  .prefault({});
