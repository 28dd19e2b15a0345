// Trusted networks ([hygiene] trusted_networks): clients inside skip every inbound check.
// node:net BlockList does the matching; IPv4-mapped IPv6 addresses (::ffff:192.0.2.1, what a
// dual-stack listener reports for IPv4 clients) are matched as IPv4.

import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { parseCidr } from '../config/schema.ts';

export class Networks {
  readonly #list = new BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    let n = 0;
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (!p) throw new Error(`not a CIDR network: ${c}`);
      this.#list.addSubnet(p.address, p.prefix, p.family);
      n++;
    }
    this.size = n;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
    if (mapped) return this.#list.check(mapped, 'ipv4');
    if (isIPv4(ip)) return this.#list.check(ip, 'ipv4');
    if (isIPv6(ip)) return this.#list.check(ip, 'ipv6');
    return false;
  }
}
