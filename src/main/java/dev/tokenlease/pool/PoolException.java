package dev.tokenlease.pool;

/** A refused pool operation: nothing was changed. */
public final class PoolException extends RuntimeException {
  private final PoolError error;
  private final long retryAfterSeconds;

  public PoolException(PoolError error, String message) {
    this(error, message, error == PoolError.UNAVAILABLE ? 1 : 0);
  }

  /** @param retryAfterSeconds when a retry may succeed (sent as {@code Retry-After}); 0 for no hint */
  public PoolException(PoolError error, String message, long retryAfterSeconds) {
    super(message, null, false, false);
    this.error = error;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public PoolError error() {
    return error;
  }

  public long retryAfterSeconds() {
    return retryAfterSeconds;
  }
}
