// GET /metrics in the Prometheus text format on `[metrics] listen` (off by default). Nothing
// else is served here; `[metrics] http = true` serves the same text on the [http] listeners
// too (web/routes.ts metricsRoute, through scrape()). The metrics are listed in docs/metrics.md.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { errorMessage } from '../core/errors.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';

export class MetricsServer {
  readonly #servers: Server[] = [];
  readonly #log: Logger;
  /** Runs before each scrape (gauges that are read from the queue). */
  readonly #beforeScrape: () => void | Promise<void>;
  /** Metrics kept by other threads (the inbound SMTP threads), added to ours at each scrape. */
  readonly #others: (() => Promise<MetricObjectWithValues<MetricValue<string>>[][]>) | undefined;

  constructor(
    log: Logger,
    beforeScrape: () => void | Promise<void>,
    others?: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>,
  ) {
    this.#log = log;
    this.#beforeScrape = beforeScrape;
    this.#others = others;
  }

  /** The exposition text: ours, with the other threads' counters summed in. */
  async #text(): Promise<string> {
    if (!this.#others) return registry.metrics();
    const [own, others] = await Promise.all([registry.getMetricsAsJSON(), this.#others()]);
    return AggregatorRegistry.aggregate([own, ...others] as never).metrics();
  }

  /** One scrape: the gauges updated, then the exposition text. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    try {
      await this.#beforeScrape();
    } catch (e) {
      this.#log.warn({ err: errorMessage(e) }, 'metrics: gauge update failed');
    }
    return { contentType: registry.contentType, body: await this.#text() };
  }

  async listen(addresses: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      const server = createServer((req, res) => {
        if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        this.scrape().then(
          (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
          (e: unknown) => {
            this.#log.error({ err: errorMessage(e) }, 'metrics: scrape failed');
            res.writeHead(500).end();
          },
        );
      });
      this.#servers.push(server);
      bound.push(await listenOn(server, a));
    }
    return bound;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map((s) => {
        s.closeAllConnections();
        return new Promise<void>((r) => s.close(() => r()));
      }),
    );
  }
}
