// Which addresses alert deliveries may connect to. A rule's target URL is
// written through the API, so by default a webhook or Slack delivery may
// not reach into the network tracegres runs in: only public unicast
// addresses are allowed, and loopback, private, link-local (the cloud
// metadata service at 169.254.169.254 among them), carrier-grade NAT,
// unique-local, multicast and every other special-purpose range are
// refused (ipaddr.js names the ranges; an IPv4-mapped IPv6 address counts
// as its IPv4 address).
//
// The check is made on the address the connection itself uses: the
// resolver is called from inside the connection, and a refused answer
// fails it. So a name that resolves to a public address when looked at and
// to a private one when connecting (DNS rebinding) is refused as well. A
// URL naming an IP address is checked before the request, since a
// connection to an address asks no resolver.
//
// TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS lifts the rule, for receivers in
// the operator's own network (and for tests, whose receivers listen on
// 127.0.0.1).
import { lookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';

const ALLOW_PRIVATE_TARGETS_SETTING = 'TRACEGRES_ALERTS_ALLOW_PRIVATE_TARGETS';

/** Why a connection to this address is refused, or undefined when it is a public unicast address. */
export function addressRefusal(address: string, host = address): string | undefined {
  // The range as ipaddr.js names it: 'unicast' for a public address, else 'private', 'loopback', 'linkLocal'...
  const range = ipaddr.isValid(address) ? ipaddr.process(address).range() : 'invalid';
  if (range === 'unicast') return undefined;
  return `${host === address ? address : `${host} resolves to ${address}, which`} is a ${range} address: alert deliveries reach public addresses only unless ${ALLOW_PRIVATE_TARGETS_SETTING} is set`;
}

/** A delivery refused for its receiver's address: refused for good, not retried. */
export class ReceiverAddressError extends Error {
  readonly code = 'ERR_TRACEGRES_RECEIVER_ADDRESS';
}

/** The refusal of a URL whose host is an IP address outside public unicast (checked before any connection). */
export function literalAddressRefusal(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) ? addressRefusal(host) : undefined;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup that fails with a ReceiverAddressError when any address of the name is refused. */
function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true } as LookupAllOptions, (error, addresses) => {
    if (error) return callback(error, []);
    for (const { address } of addresses) {
      const refusal = addressRefusal(address, hostname);
      if (refusal) return callback(new ReceiverAddressError(refusal), []);
    }
    if (options.all) return callback(null, addresses);
    const [first] = addresses;
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

/** The HTTP client of alert deliveries: connections through the address check, unless private targets are allowed. */
export function receiverDispatcher(allowPrivateTargets: boolean): Agent {
  return new Agent(allowPrivateTargets ? {} : { connect: { lookup: publicOnlyLookup as never } });
}
