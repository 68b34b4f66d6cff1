package dev.tokenlease.platform;

/**
 * What went wrong, for every capability: the code travels as a {@code ReplyException} failure code
 * on the event bus, equals the HTTP status, and is written as an error body in one place
 * ({@link dev.tokenlease.platform.http.ApiError}).
 */
public enum ErrorCode {
  BAD_REQUEST(400, "bad_request"),
  UNAUTHORIZED(401, "unauthorized"),
  FORBIDDEN(403, "forbidden"),
  NOT_FOUND(404, "not_found"),
  METHOD_NOT_ALLOWED(405, "method_not_allowed"),
  CONFLICT(409, "conflict"),
  PAYLOAD_TOO_LARGE(413, "payload_too_large"),
  UNPROCESSABLE(422, "unprocessable"),
  TOO_MANY_REQUESTS(429, "too_many_requests"),
  INTERNAL(500, "internal_server_error"),
  BAD_GATEWAY(502, "bad_gateway"),
  UNAVAILABLE(503, "unavailable"),
  /**
   * The database did not say in time whether a change took effect. Never written as an error
   * body: HTTP closes the connection and the JSON event-bus addresses give no reply, because any
   * answer would claim an outcome nobody knows yet.
   */
  OUTCOME_UNKNOWN(504, "outcome_unknown");

  private final int code;
  private final String status;

  ErrorCode(int code, String status) {
    this.code = code;
    this.status = status;
  }

  /** The failure code on the event bus; equal to the HTTP status it maps to. */
  public int code() {
    return code;
  }

  /** The {@code status} field of the JSON error body. */
  public String status() {
    return status;
  }

  public static ErrorCode fromCode(int code) {
    for (ErrorCode error : values()) {
      if (error.code == code) {
        return error;
      }
    }
    return INTERNAL;
  }
}
