/**
 * Socket addresses as the proxy reports and keys them: an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.1`, what a dual-stack listener shows for IPv4 clients) is written as plain IPv4,
 * so logs, stick keys and access checks see one form per client.
 */
export function plainIp(addr: string | undefined): string {
  const a = addr ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
