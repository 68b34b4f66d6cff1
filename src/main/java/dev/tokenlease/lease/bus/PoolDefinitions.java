package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Overflow;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.config.AppConfig;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What a pool is made of, as the pools API takes it: the body of {@code POST /api/pools} and of
 * {@code PATCH /api/pools/:pool}, checked field by field with messages that name the field.
 */
public final class PoolDefinitions {
  private PoolDefinitions() {}

  public static final String NAME_RULE = "[a-z0-9][a-z0-9_-]{0,62}";
  private static final Pattern NAME = Pattern.compile(NAME_RULE);
  /** The most tokens a pool made through the API may have; the pool {@code default} is sized by configuration. */
  public static final int MAX_SIZE = 100_000;
  public static final Duration MIN_TTL = Duration.ofSeconds(1);
  public static final Duration MAX_TTL = Duration.ofDays(30);
  public static final Duration MAX_HOLD = Duration.ofDays(365);
  /** How long an activation waits in a {@code wait} pool created without {@code max_wait}. */
  public static final Duration DEFAULT_MAX_WAIT = Duration.ofSeconds(10);
  public static final int DEFAULT_PAGE_SIZE = 50;
  public static final int MAX_PAGE_SIZE = 500;
  /** So that the offset of a page stays an int. */
  public static final int MAX_PAGE = Integer.MAX_VALUE / MAX_PAGE_SIZE;

  private static final Set<String> CREATE_FIELDS =
      Set.of("name", "size", "lease_ttl", "overflow", "max_wait", "max_hold", "max_leases_per_user");
  private static final Set<String> PATCH_FIELDS =
      Set.of("size", "lease_ttl", "overflow", "max_wait", "max_hold", "max_leases_per_user");

  /**
   * The fields a PATCH names; null for the ones it leaves as they are. {@code max_hold} can be set
   * to null (no cap), so whether it was named is kept apart; {@code max_leases_per_user} set to null
   * is 0 (no limit); the other fields cannot be null (400, as any invalid value).
   */
  public record Patch(Integer size, Duration leaseTtl, Overflow overflow, Duration maxWait, boolean maxHoldNamed,
      Duration maxHold, Integer maxLeasesPerUser) implements java.io.Serializable {}

  public static boolean isName(String name) {
    return NAME.matcher(name).matches();
  }

  public static ApiException notFound() {
    return new ApiException(ErrorCode.NOT_FOUND, "Pool not found");
  }

  /** {@code POST /api/pools}: name, size and lease_ttl are required. */
  public static PoolMessages.CreatePool create(JsonObject body) {
    unknownFields(body, CREATE_FIELDS);
    Object rawName = body.getValue("name");
    if (rawName == null || "".equals(rawName)) {
      throw bad("Missing required parameter: name");
    }
    if (!(rawName instanceof String name) || !isName(name)) {
      throw bad("Invalid name. Must match " + NAME_RULE + ".");
    }
    if (body.getValue("size") == null) {
      throw bad("Missing required parameter: size");
    }
    int size = size(body.getValue("size"), 1);
    if (body.getValue("lease_ttl") == null) {
      throw bad("Missing required parameter: lease_ttl");
    }
    Duration ttl = ttl(body.getValue("lease_ttl"));
    Overflow overflow = body.getValue("overflow") == null ? Overflow.EVICT_OLDEST : overflow(body.getValue("overflow"));
    Duration maxWait = body.getValue("max_wait") == null ? null : maxWait(body.getValue("max_wait"));
    Duration maxHold = body.getValue("max_hold") == null ? null : maxHold(body.getValue("max_hold"));
    int perUser = body.getValue("max_leases_per_user") == null ? 0 : perUser(body.getValue("max_leases_per_user"));
    return new PoolMessages.CreatePool(settings(name, ttl, overflow, maxWait, maxHold, perUser), size);
  }

  /** {@code PATCH /api/pools/:pool}: any of the fields but the name; at least one. */
  public static Patch patch(JsonObject body) {
    unknownFields(body, PATCH_FIELDS);
    if (body.isEmpty()) {
      throw bad("Nothing to change. Send at least one of: size, lease_ttl, overflow, max_wait, max_hold, "
          + "max_leases_per_user.");
    }
    return new Patch(
        body.containsKey("size") ? size(body.getValue("size"), 1) : null,
        body.containsKey("lease_ttl") ? ttl(body.getValue("lease_ttl")) : null,
        body.containsKey("overflow") ? overflow(body.getValue("overflow")) : null,
        body.containsKey("max_wait") ? maxWait(body.getValue("max_wait")) : null,
        body.containsKey("max_hold"),
        body.getValue("max_hold") == null ? null : maxHold(body.getValue("max_hold")),
        // Named as null: no limit, as 0.
        body.containsKey("max_leases_per_user") ? perUser(body.getValue("max_leases_per_user")) : null);
  }

  /** The settings a patch leaves a pool with; checked as a whole (a cap shorter than the TTL is refused). */
  public static PoolSettings apply(PoolSettings now, Patch patch) {
    Overflow overflow = patch.overflow() == null ? now.overflow() : patch.overflow();
    Duration maxWait = patch.maxWait() != null ? patch.maxWait()
        : overflow == Overflow.WAIT && now.overflow() == Overflow.WAIT ? now.maxWait() : null;
    return settings(now.name(), patch.leaseTtl() == null ? now.leaseTtl() : patch.leaseTtl(), overflow, maxWait,
        patch.maxHoldNamed() ? patch.maxHold() : now.maxHold(),
        patch.maxLeasesPerUser() == null ? now.maxLeasesPerUser() : patch.maxLeasesPerUser());
  }

  private static PoolSettings settings(String name, Duration ttl, Overflow overflow, Duration maxWait, Duration maxHold,
      int perUser) {
    if (maxWait != null && overflow != Overflow.WAIT) {
      throw bad("max_wait applies only when overflow is 'wait'.");
    }
    if (overflow == Overflow.WAIT && maxWait == null) {
      maxWait = DEFAULT_MAX_WAIT;
    }
    if (maxHold != null && maxHold.compareTo(ttl) < 0) {
      throw bad("Invalid max_hold. Must be at least lease_ttl (" + ttl + ").");
    }
    return new PoolSettings(name, ttl, overflow, maxWait, maxHold, perUser);
  }

  /** {@code GET /api/pools?page&limit}. */
  public static PoolMessages.ListPools list(JsonObject query) {
    int page = intIn(query.getValue("page"), true, 1, 1, MAX_PAGE,
        "Invalid page. Must be an integer from 1 to " + MAX_PAGE + ".");
    int limit = intIn(query.getValue("limit"), true, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE,
        "Invalid limit. Must be an integer from 1 to " + MAX_PAGE_SIZE + ".");
    return new PoolMessages.ListPools(page, limit);
  }

  /** A pool name from a path: one no pool could have is not found. */
  public static String pathName(String raw) {
    if (raw == null || !isName(raw)) {
      throw notFound();
    }
    return raw;
  }

  private static void unknownFields(JsonObject body, Set<String> known) {
    for (String field : body.fieldNames()) {
      if (!known.contains(field)) {
        throw bad("Unknown field: " + field.substring(0, Math.min(field.length(), 64)));
      }
    }
  }

  private static int size(Object raw, int min) {
    return intIn(raw, false, -1, min, MAX_SIZE, "Invalid size. Must be an integer from " + min + " to " + MAX_SIZE + ".");
  }

  private static int perUser(Object raw) {
    return intIn(raw, false, 0, 0, MAX_SIZE, "Invalid max_leases_per_user. Must be an integer from 0 (no limit) to "
        + MAX_SIZE + ".");
  }

  /**
   * A JSON integer, or, from a query string, its decimal text; absent (or an empty query value) is
   * the default, -1 for none.
   */
  private static int intIn(Object raw, boolean query, int absent, int min, int max, String message) {
    if (raw == null || query && "".equals(raw)) {
      if (absent < min) {
        throw bad(message);
      }
      return absent;
    }
    long value;
    if (raw instanceof Integer || raw instanceof Long) {
      value = ((Number) raw).longValue();
    } else if (query && raw instanceof String text && text.matches("[0-9]{1,10}")) {
      value = Long.parseLong(text);
    } else {
      throw bad(message);
    }
    if (value < min || value > max) {
      throw bad(message);
    }
    return (int) value;
  }

  private static Duration ttl(Object raw) {
    Duration value = duration(raw, "lease_ttl");
    if (value.compareTo(MIN_TTL) < 0 || value.compareTo(MAX_TTL) > 0) {
      throw bad("Invalid lease_ttl. Must be an ISO-8601 duration from " + MIN_TTL + " to " + MAX_TTL + ", such as PT2M.");
    }
    return value;
  }

  private static Duration maxWait(Object raw) {
    Duration value = duration(raw, "max_wait");
    if (value.isZero() || value.isNegative() || value.compareTo(AppConfig.LONGEST_WAIT) > 0) {
      throw bad("Invalid max_wait. Must be an ISO-8601 duration above PT0S and at most " + AppConfig.LONGEST_WAIT
          + ", such as PT10S.");
    }
    return value;
  }

  private static Duration maxHold(Object raw) {
    Duration value = duration(raw, "max_hold");
    if (value.compareTo(MAX_HOLD) > 0) {
      throw bad("Invalid max_hold. Must be an ISO-8601 duration of at most " + MAX_HOLD + ", such as PT1H.");
    }
    return value;
  }

  private static Duration duration(Object raw, String field) {
    if (raw instanceof String text && text.length() <= 40) {
      try {
        Duration value = Duration.parse(text);
        if (!value.isNegative()) {
          return value;
        }
      } catch (DateTimeParseException e) {
        // reported below
      }
    }
    throw bad("Invalid " + field + ". Must be an ISO-8601 duration such as PT2M.");
  }

  private static Overflow overflow(Object raw) {
    if (raw instanceof String text) {
      for (Overflow policy : Overflow.values()) {
        if (policy.wireName().equals(text)) {
          return policy;
        }
      }
    }
    throw bad("Invalid overflow. Must be 'evict_oldest', 'reject' or 'wait'.");
  }

  private static ApiException bad(String message) {
    return new ApiException(ErrorCode.BAD_REQUEST, message);
  }
}
