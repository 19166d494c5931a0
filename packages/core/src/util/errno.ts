/**
 * A file-system or socket error as words for a user (`no such file or directory`), not as the
 * bare errno code Node puts in `code` (`ENOENT`).
 */

const WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files on this system',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  EBUSY: 'device or resource busy',
  EAGAIN: 'resource temporarily unavailable',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EEXIST: 'file exists',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'timed out',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** The words for `err`'s errno code; for an unknown code, the code itself; without one, the message. */
export function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return WORDS[code] ?? code;
  return err instanceof Error ? err.message : String(err);
}
