// Figures for the benches. eventLoopLag: the server's event-loop delay from its Prometheus
// endpoint ([metrics] listen), prom-client's monitorEventLoopDelay histogram (10 ms resolution),
// reset at each scrape, so one scrape before a stretch and one after it give its figures (ms).

export async function eventLoopLag(port: number): Promise<Record<'p50' | 'p99' | 'max' | 'mean', number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const get = (name: string) =>
    Number(new RegExp(`^arcline_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1]) * 1000;
  return { p50: get('p50'), p99: get('p99'), max: get('max'), mean: get('mean') };
}

/** The p-th percentile of `xs` (unsorted; the value at rank floor(p% of n)); 0 when empty. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}
