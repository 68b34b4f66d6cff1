package dev.tokenlease.platform;

/**
 * The one failure type of every capability: a refused operation, nothing was changed. Each API
 * writes it in its own documented body shape ({@link dev.tokenlease.platform.http.ErrorShape}).
 *
 * <p>{@code code} is the API's own name for the error where it has one (RFC 6749's
 * {@code invalid_client}, seed 003's {@code TOKEN_LIST_ERROR}); {@code reason} is the detail an
 * API shows beside its message (seed 003's {@code details.reason}).
 */
public final class ApiException extends RuntimeException {
  private final ErrorCode error;
  private final long retryAfterSeconds;
  private final String code;
  private final String reason;

  public ApiException(ErrorCode error, String message) {
    this(error, message, error == ErrorCode.UNAVAILABLE ? 1 : 0);
  }

  /** @param retryAfterSeconds when a retry may succeed (sent as {@code Retry-After}); 0 for no hint */
  public ApiException(ErrorCode error, String message, long retryAfterSeconds) {
    this(error, message, retryAfterSeconds, null, null);
  }

  private ApiException(ErrorCode error, String message, long retryAfterSeconds, String code, String reason) {
    super(message, null, false, false);
    this.error = error;
    this.retryAfterSeconds = retryAfterSeconds;
    this.code = code;
    this.reason = reason;
  }

  /** The same failure under the API's own error name, with an optional detail. */
  public ApiException named(String code, String reason) {
    return new ApiException(error, getMessage(), retryAfterSeconds, code, reason);
  }

  public ErrorCode error() {
    return error;
  }

  public long retryAfterSeconds() {
    return retryAfterSeconds;
  }

  /** The API's own name for the error, or null to use {@link ErrorCode#status()}. */
  public String code() {
    return code;
  }

  /** The detail shown beside the message, or null. */
  public String reason() {
    return reason;
  }
}
