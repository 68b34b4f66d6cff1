package dev.tokenlease.pool;

/** A refused pool operation: nothing was changed. */
public final class PoolException extends RuntimeException {
  private final PoolError error;

  public PoolException(PoolError error, String message) {
    super(message, null, false, false);
    this.error = error;
  }

  public PoolError error() {
    return error;
  }
}
