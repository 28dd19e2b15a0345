// Mail client autoconfiguration on the HTTP and HTTPS listeners (docs/autoconfig.md); the
// documents themselves are built in web/client-config.ts.
//   Thunderbird: GET /.well-known/autoconfig/mail/config-v1.1.xml on any host name, and
//     /mail/config-v1.1.xml on autoconfig.<domain>; the domain is that of ?emailaddress= when
//     given, else the host's (autoconfig.<domain> → <domain>).
//   Outlook: /autodiscover/autodiscover.xml (any case, as Outlook asks for
//     /Autodiscover/Autodiscover.xml), POST with the request XML (web/autodiscover-request.ts),
//     or GET with ?emailaddress=.
//   Apple: GET /apple/mobileconfig?emailaddress=… on HTTPS only (a profile is installed with a
//     tap: it must not come from a connection anyone on the path can rewrite).
// Only local domains get an answer (404 otherwise), and only the domain is checked, never the
// user: the answer is the same for every address of a domain, so nobody learns which accounts
// exist.

import { parseAddress } from '../core/address.ts';
import { parseAutodiscoverRequest } from './autodiscover-request.ts';
import { appleMobileconfig, autodiscoverResponse, type ClientSettings, thunderbirdConfig } from './client-config.ts';
import { NOT_FOUND, onlyMethods, type Route, readOnly, text, type WebRequest, type WebResponse } from './routes.ts';

export const THUNDERBIRD_WELL_KNOWN = '/.well-known/autoconfig/mail/config-v1.1.xml';
export const THUNDERBIRD_AUTOCONFIG_HOST = '/mail/config-v1.1.xml';
export const AUTODISCOVER_PATH = '/autodiscover/autodiscover.xml';
export const MOBILECONFIG_PATH = '/apple/mobileconfig';
/** The spellings of the autodiscover path whose POST bodies the listener reads (Router.add). */
export const AUTODISCOVER_BODY_PATHS = [AUTODISCOVER_PATH, '/Autodiscover/Autodiscover.xml'];

export interface AutoconfigDeps {
  readonly settings: ClientSettings;
  readonly isLocalDomain: (domain: string) => Promise<boolean>;
}

const xml = (body: string): WebResponse => ({
  status: 200,
  headers: { 'content-type': 'application/xml; charset=utf-8', 'cache-control': 'no-store' },
  body,
});

const BAD_ADDRESS = text(400, 'bad emailaddress\n');

/** The address of ?emailaddress=: undefined when absent, null when not an address. */
function queryAddress(req: WebRequest): { local: string; domain: string } | null | undefined {
  const raw = req.query.get('emailaddress');
  if (raw === null) return undefined;
  return raw.length > 320 ? null : parseAddress(raw.trim());
}

export function autoconfigRoute(deps: AutoconfigDeps): Route {
  const local = (domain: string) => deps.isLocalDomain(domain);
  return async (req) => {
    const p = req.path;
    if (p === THUNDERBIRD_WELL_KNOWN || (p === THUNDERBIRD_AUTOCONFIG_HOST && req.host?.startsWith('autoconfig.'))) {
      const refused = readOnly(req);
      if (refused) return refused;
      const a = queryAddress(req);
      if (a === null) return BAD_ADDRESS;
      const host = req.host ?? '';
      const domain = a ? a.domain : host.startsWith('autoconfig.') ? host.slice('autoconfig.'.length) : host;
      if (!domain || !(await local(domain))) return NOT_FOUND;
      return xml(thunderbirdConfig(deps.settings, domain));
    }
    if (p.toLowerCase() === AUTODISCOVER_PATH) {
      const refused = onlyMethods(req, ['GET', 'HEAD', 'POST']);
      if (refused) return refused;
      let address: { local: string; domain: string } | null | undefined;
      if (req.method === 'POST') {
        const parsed = parseAutodiscoverRequest(req.body ?? Buffer.alloc(0));
        if (parsed.kind === 'invalid') return text(400, `bad autodiscover request: ${parsed.reason}\n`);
        address = parseAddress(parsed.emailAddress);
      } else {
        address = queryAddress(req);
        if (address === undefined) return text(400, 'emailaddress expected\n');
      }
      if (!address) return BAD_ADDRESS;
      if (!(await local(address.domain))) return NOT_FOUND;
      return xml(autodiscoverResponse(deps.settings, `${address.local}@${address.domain}`));
    }
    if (p === MOBILECONFIG_PATH) {
      if (!req.secure) return NOT_FOUND;
      const refused = readOnly(req);
      if (refused) return refused;
      const a = queryAddress(req);
      if (!a) return a === undefined ? text(400, 'emailaddress expected\n') : BAD_ADDRESS;
      if (!(await local(a.domain))) return NOT_FOUND;
      const profile = appleMobileconfig(deps.settings, `${a.local}@${a.domain}`);
      if (!profile) return NOT_FOUND;
      return {
        status: 200,
        headers: {
          'content-type': 'application/x-apple-aspen-config',
          'content-disposition': `attachment; filename="${a.domain}.mobileconfig"`,
          'cache-control': 'no-store',
        },
        body: profile,
      };
    }
    return null;
  };
}
