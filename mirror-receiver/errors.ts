// Errors of the mirror receiver. Frame content never raises; only a source that cannot be
// opened or read does.

export class MirrorSourceError extends Error {
  override readonly name = 'MirrorSourceError';
}
