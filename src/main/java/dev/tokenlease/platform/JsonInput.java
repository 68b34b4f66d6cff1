package dev.tokenlease.platform;

import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;

/** Reading fields of the JSON input shape that more than one API shares, with the same messages. */
public final class JsonInput {
  private JsonInput() {}

  /** An optional ISO-8601 instant field (any offset); absent or empty is null. */
  public static Instant optionalInstant(JsonObject in, String field) {
    Object raw = in.getValue(field);
    if (raw == null || "".equals(raw)) {
      return null;
    }
    if (raw instanceof String text && text.length() <= 64) {
      try {
        return OffsetDateTime.parse(text).toInstant();
      } catch (DateTimeParseException e) {
        // reported below
      }
    }
    throw new ApiException(ErrorCode.BAD_REQUEST, "Invalid " + field + ". Must be an ISO-8601 instant such as 2025-12-19T15:12:02Z.");
  }
}
