#!/usr/bin/env node
// Makes sure the Debian tools the test suite drives for real are present (haproxy: dynamic-cookie
// ground truth; chromium: the dashboard test's headless browser). Installs them with apt-get when
// running as root on Debian; otherwise says what is missing and fails, so a test never silently skips.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needs = [
  { pkg: 'haproxy', path: '/usr/sbin/haproxy' },
  { pkg: 'dnsmasq', path: '/usr/sbin/dnsmasq' }, // a real DNS server for service-discovery tests
  { pkg: 'keepalived', path: '/usr/sbin/keepalived' }, // VRRP for the VIP failover test (test/vip.test.ts)
  { pkg: 'docker-compose', path: '/usr/bin/docker-compose' }, // `docker-compose config -q` (test/compose.test.ts)
  { pkg: 'iproute2', path: '/sbin/ip' }, // network namespaces for test/vip.test.ts
  { pkg: 'chromium', path: '/usr/bin/chromium' }, // headless browser for test/dashboard.test.ts
];
const missing = needs.filter((n) => !existsSync(n.path));
if (missing.length === 0) process.exit(0);
const names = missing.map((m) => m.pkg);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !existsSync('/usr/bin/apt-get')) {
  console.error(`The test suite needs these Debian packages: ${names.join(' ')}\nInstall them with: sudo apt-get install -y ${names.join(' ')}`);
  process.exit(1);
}
console.error(`installing test dependencies: ${names.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['install', '-y', '-qq', ...names], { stdio: 'inherit', env });
} catch {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...names], { stdio: 'inherit', env });
}
