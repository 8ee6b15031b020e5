// Webhook URLs must not reach into the service's own network: an address that
// is private, loopback, link-local (cloud metadata), multicast or reserved is
// refused unless WEBHOOK_ALLOW_PRIVATE=1. Checked when a job is submitted and
// again on the address each delivery actually connects to (DNS can change).
import dns from "node:dns";
import net from "node:net";
import { AppError } from "../errors.js";

const BLOCKED = new net.BlockList();
for (const [address, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  BLOCKED.addSubnet(address, prefix, "ipv4");
for (const [address, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const) {
  BLOCKED.addSubnet(address, prefix, "ipv6");
}

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1], "ipv4");
  return BLOCKED.check(address, net.isIPv6(address) ? "ipv6" : "ipv4");
}

function refused(url: string, address: string): AppError {
  return new AppError("WEBHOOK_URL_REFUSED", `webhook URL ${url} resolves to ${address}, a private, loopback or link-local address`, {
    url,
    address,
  });
}

/** The URL parsed, http(s) only, without credentials. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError("VALIDATION_FAILED", `webhook.url is not a URL: ${JSON.stringify(raw)}`, { url: raw });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new AppError("VALIDATION_FAILED", `webhook.url must be http or https, got ${url.protocol}`, { url: raw });
  }
  if (url.username || url.password) throw new AppError("VALIDATION_FAILED", "webhook.url must not carry credentials", { url: url.origin });
  return url;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** Submission-time check: every address the host resolves to now must be public (unless allowed). */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<void> {
  const url = parseWebhookUrl(raw);
  if (allowPrivate) return;
  const host = hostOf(url);
  let addresses: string[];
  try {
    addresses = net.isIP(host) ? [host] : (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw new AppError("WEBHOOK_URL_REFUSED", `webhook URL host ${host} does not resolve`, { url: raw });
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) throw refused(raw, bad);
}

/**
 * A `lookup` for http.request that refuses private answers, so the check
 * applies to the address the delivery connects to. IP literals never reach
 * lookup: deliveries check those with assertPublicLiteral.
 */
export function publicOnlyLookup(url: string): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "", 0);
      const list = addresses as unknown as dns.LookupAddress[];
      const bad = list.find((a) => isPrivateAddress(a.address));
      if (bad) return callback(refused(url, bad.address) as unknown as NodeJS.ErrnoException, "", 0);
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

export function assertPublicLiteral(url: URL): void {
  const host = hostOf(url);
  if (net.isIP(host) && isPrivateAddress(host)) throw refused(url.href, host);
}
