package dev.tokenlease.platform;

/** A refused operation of any capability, with its {@link ErrorCode}: nothing was changed. */
public final class ApiException extends RuntimeException {
  private final ErrorCode error;
  private final long retryAfterSeconds;

  public ApiException(ErrorCode error, String message) {
    this(error, message, error == ErrorCode.UNAVAILABLE ? 1 : 0);
  }

  /** @param retryAfterSeconds when a retry may succeed (sent as {@code Retry-After}); 0 for no hint */
  public ApiException(ErrorCode error, String message, long retryAfterSeconds) {
    super(message, null, false, false);
    this.error = error;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public ErrorCode error() {
    return error;
  }

  public long retryAfterSeconds() {
    return retryAfterSeconds;
  }
}
