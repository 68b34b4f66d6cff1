package dev.tokenlease.vault;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.Paging;
import dev.tokenlease.platform.JsonInput;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * Requests and replies of the vault, their parsing from the JSON input shape (HTTP bodies with path
 * and query parameters merged in) and their JSON. Nothing here ever puts a secret into metadata.
 */
public final class CredentialMessages {
  private CredentialMessages() {}

  static final Set<String> ENVIRONMENTS = Set.of("development", "staging", "production", "dr");
  static final Set<String> STATUSES = Set.of("active", "expiring", "failed", "retired");
  static final Set<String> GRANTS = Set.of("refresh_token", "client_credentials");
  private static final Pattern SERVICE = Pattern.compile("[a-z0-9][a-z0-9._-]{0,63}");
  private static final int MAX_SECRET_LENGTH = 16 * 1024;
  static final int DEFAULT_PAGE_SIZE = 20;
  static final int MAX_PAGE_SIZE = 100;

  /**
   * The latest expiry the vault stores. PostgreSQL's timestamptz ends in year 294276 and the driver
   * writes anything later as {@code infinity}, which would never expire; four-digit years also keep
   * every answer in the documented timestamp format.
   */
  static final Instant LATEST_EXPIRY = Instant.parse("9999-12-31T23:59:59Z");

  /** How a credential is refreshed at its provider; secrets here are plaintext only in transit. */
  public record RefreshSettings(String tokenUrl, String grantType, String clientId, String clientSecret,
      String refreshToken, String scope) {}

  public record Create(String service, String environment, String value, Instant expiresAt, RefreshSettings refresh) {}

  public record ListQuery(String service, String environment, String status, Duration expiringWithin, int page, int limit) {}

  public record Get(UUID id) {}

  public record History(UUID id) {}

  public record Retire(UUID id) {}

  public record RotateNow(UUID id) {}

  /** @param stage {@code current} (default) or {@code previous} */
  public record Current(String service, String environment, String stage) {}

  public record Usage(UUID id, double responseTimeMs, boolean success) {}

  public record Reencrypt() {}

  /** Everything about a credential except its secrets. */
  public record Info(UUID id, String service, String environment, String status, int currentVersion, Instant expiresAt,
      String tokenUrl, String grantType, String clientId, String scope, boolean hasClientSecret,
      boolean hasRefreshToken, int rotationAttempts, Instant nextAttemptAt, String lastError, Instant lastRefreshed,
      Instant lastUsed, long usageCount, long failureCount, long responseCount, Double avgResponseMs,
      Instant createdAt, Instant updatedAt) {}

  public record Page(List<Info> credentials, long total, int page, int limit) {}

  public record Value(UUID id, String service, String environment, int version, String value, Instant expiresAt) {}

  public record UsageStats(UUID id, long usageCount, long failureCount, long responseCount, Double avgResponseMs) {}

  public record VersionInfo(int version, String stage, long keyId, String source, Instant createdAt, Instant expiresAt) {}

  public record Event(Instant at, String type, Integer version, Integer attempt, String detail) {}

  public record HistoryReply(UUID id, List<VersionInfo> versions, List<Event> events) {}

  public record Reencrypted(int count) {}

  // ---- parsing ----

  public static Create create(JsonObject in) {
    String service = service(in);
    String environment = environment(in);
    String value = requiredString(in, "value");
    if (value.length() > MAX_SECRET_LENGTH) {
      throw bad("Invalid value. Must be at most " + MAX_SECRET_LENGTH + " characters.");
    }
    Instant expiresAt = requiredInstant(in, "expires_at");
    if (!expiresAt.isAfter(Instant.now())) {
      throw bad("Invalid expires_at. Must be in the future.");
    }
    if (expiresAt.isAfter(LATEST_EXPIRY)) {
      throw bad("Invalid expires_at. Must be no later than " + LATEST_EXPIRY + ".");
    }
    Object rawRefresh = in.getValue("refresh");
    RefreshSettings refresh = null;
    if (rawRefresh != null) {
      if (!(rawRefresh instanceof JsonObject settings)) {
        throw bad("Invalid refresh. Must be an object with token_url and grant_type.");
      }
      refresh = refresh(settings);
    }
    return new Create(service, environment, value, expiresAt, refresh);
  }

  private static RefreshSettings refresh(JsonObject in) {
    String url = requiredString(in, "token_url");
    try {
      URI uri = URI.create(url);
      if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
        throw new IllegalArgumentException();
      }
    } catch (IllegalArgumentException e) {
      throw bad("Invalid token_url. Must be an http or https URL.");
    }
    String grant = requiredString(in, "grant_type");
    if (!GRANTS.contains(grant)) {
      throw bad("Invalid grant_type. Must be 'refresh_token' or 'client_credentials'.");
    }
    String clientId = optionalString(in, "client_id");
    String clientSecret = optionalString(in, "client_secret");
    String refreshToken = optionalString(in, "refresh_token");
    String scope = optionalString(in, "scope");
    if ("refresh_token".equals(grant) && refreshToken == null) {
      throw bad("Missing required parameter: refresh_token");
    }
    if ("client_credentials".equals(grant) && clientId == null) {
      throw bad("Missing required parameter: client_id");
    }
    return new RefreshSettings(url, grant, clientId, clientSecret, refreshToken, scope);
  }

  public static ListQuery list(JsonObject in) {
    String service = in.getValue("service") == null || "".equals(in.getValue("service")) ? null : service(in);
    String environment = in.getValue("environment") == null || "".equals(in.getValue("environment")) ? null : environment(in);
    String status = optionalString(in, "status");
    if (status != null && !STATUSES.contains(status)) {
      throw bad("Invalid status. Must be 'active', 'expiring', 'failed' or 'retired'.");
    }
    Duration within = null;
    String rawWithin = optionalString(in, "expiring_within");
    if (rawWithin != null) {
      try {
        within = Duration.parse(rawWithin);
      } catch (DateTimeParseException e) {
        within = null;
      }
      if (within == null || within.isNegative() || within.toDays() > 3650) {
        throw bad("Invalid expiring_within. Must be an ISO-8601 duration such as PT24H.");
      }
    }
    int page = intIn(in, "page", 1, 1, Integer.MAX_VALUE / MAX_PAGE_SIZE, "Invalid page. Must be an integer of at least 1.");
    int limit = intIn(in, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE,
        "Invalid limit. Must be an integer from 1 to " + MAX_PAGE_SIZE + ".");
    return new ListQuery(service, environment, status, within, page, limit);
  }

  public static Current current(JsonObject in) {
    String stage = optionalString(in, "stage");
    if (stage != null && !"current".equals(stage) && !"previous".equals(stage)) {
      throw bad("Invalid stage. Must be 'current' or 'previous'.");
    }
    return new Current(service(in), environment(in), stage == null ? "current" : stage);
  }

  public static Usage usage(JsonObject in) {
    UUID id = id(in);
    Object time = in.getValue("response_time_ms");
    if (time == null) {
      throw bad("Missing required parameter: response_time_ms");
    }
    if (!(time instanceof Number number) || number.doubleValue() < 0 || number.doubleValue() > 3_600_000
        || Double.isNaN(number.doubleValue())) {
      throw bad("Invalid response_time_ms. Must be a number from 0 to 3600000.");
    }
    Object success = in.getValue("success");
    if (!(success instanceof Boolean ok)) {
      throw bad(success == null ? "Missing required parameter: success" : "Invalid success. Must be true or false.");
    }
    return new Usage(id, number.doubleValue(), ok);
  }

  public static UUID id(JsonObject in) {
    Object raw = in.getValue("id");
    if (raw instanceof String text && text.length() == 36) {
      try {
        return UUID.fromString(text);
      } catch (IllegalArgumentException e) {
        // reported below
      }
    }
    throw bad("Invalid credential id format. Must be a valid UUID.");
  }

  private static String service(JsonObject in) {
    Object raw = in.getValue("service");
    if (raw == null || "".equals(raw)) {
      throw bad("Missing required parameter: service");
    }
    if (!(raw instanceof String text) || !SERVICE.matcher(text).matches()) {
      throw bad("Invalid service. Must be 1 to 64 lower-case letters, digits, '.', '_' or '-'.");
    }
    return text;
  }

  private static String environment(JsonObject in) {
    Object raw = in.getValue("environment");
    if (raw == null || "".equals(raw)) {
      throw bad("Missing required parameter: environment");
    }
    if (!(raw instanceof String text) || !ENVIRONMENTS.contains(text)) {
      throw bad("Invalid environment. Must be 'development', 'staging', 'production' or 'dr'.");
    }
    return text;
  }

  private static String requiredString(JsonObject in, String field) {
    Object raw = in.getValue(field);
    if (raw == null || "".equals(raw)) {
      throw bad("Missing required parameter: " + field);
    }
    if (!(raw instanceof String text)) {
      throw bad("Invalid " + field + ". Must be a string.");
    }
    return text;
  }

  private static String optionalString(JsonObject in, String field) {
    Object raw = in.getValue(field);
    if (raw == null || "".equals(raw)) {
      return null;
    }
    if (!(raw instanceof String text)) {
      throw bad("Invalid " + field + ". Must be a string.");
    }
    return text;
  }

  private static Instant requiredInstant(JsonObject in, String field) {
    Instant instant = JsonInput.optionalInstant(in, field);
    if (instant == null) {
      throw bad("Missing required parameter: " + field);
    }
    return instant;
  }

  private static int intIn(JsonObject in, String field, int fallback, int min, int max, String message) {
    Object raw = in.getValue(field);
    if (raw == null || "".equals(raw)) {
      return fallback;
    }
    try {
      long value = raw instanceof Number n && n.doubleValue() == n.longValue() ? n.longValue() : Long.parseLong((String) raw);
      if (value >= min && value <= max) {
        return (int) value;
      }
    } catch (RuntimeException e) {
      // reported below
    }
    throw bad(message);
  }

  static ApiException bad(String message) {
    return new ApiException(ErrorCode.BAD_REQUEST, message);
  }

  // ---- JSON ----

  public static JsonObject info(Info c) {
    JsonObject refresh = c.tokenUrl() == null ? null : new JsonObject()
        .put("token_url", c.tokenUrl())
        .put("grant_type", c.grantType())
        .put("client_id", c.clientId())
        .put("scope", c.scope())
        .put("has_client_secret", c.hasClientSecret())
        .put("has_refresh_token", c.hasRefreshToken());
    return new JsonObject()
        .put("id", c.id().toString())
        .put("service", c.service())
        .put("environment", c.environment())
        .put("status", c.status())
        .put("version", c.currentVersion())
        .put("expires_at", time(c.expiresAt()))
        .put("refresh", refresh)
        .put("last_refreshed", time(c.lastRefreshed()))
        .put("last_used", time(c.lastUsed()))
        .put("usage_count", c.usageCount())
        .put("failure_count", c.failureCount())
        .put("avg_response_ms", c.avgResponseMs())
        .put("rotation_attempts", c.rotationAttempts())
        .put("next_attempt_at", time(c.nextAttemptAt()))
        .put("last_error", c.lastError())
        .put("created_at", time(c.createdAt()))
        .put("updated_at", time(c.updatedAt()));
  }

  public static JsonObject page(Page page) {
    JsonArray items = new JsonArray();
    page.credentials().forEach(c -> items.add(info(c)));
    return Paging.page("credentials", items, page.total(), page.page(), page.limit());
  }

  public static JsonObject value(Value v) {
    return new JsonObject().put("id", v.id().toString()).put("service", v.service()).put("environment", v.environment())
        .put("version", v.version()).put("value", v.value()).put("expires_at", time(v.expiresAt()));
  }

  public static JsonObject usageStats(UsageStats s) {
    return new JsonObject().put("id", s.id().toString()).put("usage_count", s.usageCount())
        .put("failure_count", s.failureCount()).put("response_count", s.responseCount())
        .put("avg_response_ms", s.avgResponseMs());
  }

  public static JsonObject history(HistoryReply h) {
    JsonArray versions = new JsonArray();
    h.versions().forEach(v -> versions.add(new JsonObject().put("version", v.version()).put("stage", v.stage())
        .put("key_id", v.keyId()).put("source", v.source()).put("created_at", time(v.createdAt()))
        .put("expires_at", time(v.expiresAt()))));
    JsonArray events = new JsonArray();
    h.events().forEach(e -> events.add(event(e)));
    return new JsonObject().put("id", h.id().toString()).put("versions", versions).put("events", events);
  }

  static JsonObject event(Event e) {
    return new JsonObject().put("at", time(e.at())).put("type", e.type()).put("version", e.version())
        .put("attempt", e.attempt()).put("detail", e.detail());
  }

  public static JsonObject reencrypted(Reencrypted r) {
    return new JsonObject().put("reencrypted", r.count());
  }

  static String time(Instant instant) {
    return instant == null ? null : instant.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
  }

}
