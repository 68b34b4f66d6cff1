package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolStats;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.lease.core.TokenState;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.JsonInput;
import dev.tokenlease.platform.LocalRecordCodec;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.UUID;

/**
 * The requests and replies that travel on the local addresses, and their parsing from the JSON
 * input shape that HTTP and the {@code tokens.api.*} addresses share (so both validate alike and
 * give the same messages).
 */
public final class PoolMessages {
  private PoolMessages() {}

  public static final int DEFAULT_HISTORY_LIMIT = 50;
  public static final int MAX_HISTORY_LIMIT = 500;
  private static final int MAX_IDEMPOTENCY_KEY_LENGTH = 255;

  /**
   * @param pool the pool's name
   * @param idempotencyKey the caller's Idempotency-Key, or null
   * @param waitHandle how the caller waits if the pool is full and makes callers wait, or null not to wait
   */
  public record Activate(String pool, UUID userId, String idempotencyKey, WaitHandle waitHandle) implements java.io.Serializable {
    /** On the pool {@code default}, not waiting. */
    public Activate(UUID userId, String idempotencyKey) {
      this(TokenPool.DEFAULT, userId, idempotencyKey, null);
    }
  }

  /**
   * A caller's willingness to wait for a token, and the handle of its wait: compared by identity,
   * so the caller can {@link CancelWait cancel} exactly its own.
   */
  public static final class WaitHandle implements java.io.Serializable {
    private final long maxWaitNanos;
    /** Set by the pool when the activation starts waiting; read by the caller once it is answered. */
    private volatile boolean queued;

    /** @param maxWaitNanos the longest the caller waits; the pool's {@code max_wait} caps it */
    public WaitHandle(long maxWaitNanos) {
      this.maxWaitNanos = maxWaitNanos;
    }

    public long maxWaitNanos() {
      return maxWaitNanos;
    }

    /** Whether the activation waited in the queue (rather than being answered at once). */
    public boolean queued() {
      return queued;
    }

    void markQueued() {
      queued = true;
    }
  }

  /** The caller of a waiting activation went away: its wait ends and it is never granted a token. */
  public record CancelWait(String pool, WaitHandle handle) implements java.io.Serializable {}

  public record Release(String pool, UUID tokenId, UUID userId, Long generation) implements java.io.Serializable {}

  public record Renew(String pool, UUID tokenId, UUID userId, Long generation) implements java.io.Serializable {}

  /** An operator ends the current lease of a token now. */
  public record Revoke(String pool, UUID tokenId) implements java.io.Serializable {}

  public record GetToken(String pool, UUID tokenId) implements java.io.Serializable {}

  /** @param state the state to keep, or null for all */
  public record ListTokens(String pool, TokenState state) implements java.io.Serializable {}

  public record ClearActive(String pool) implements java.io.Serializable {}

  public record TokenUsages(String pool, UUID tokenId) implements java.io.Serializable {}

  public record PoolStatus() implements java.io.Serializable {}

  /** Asks for {@link StatsReport}. */
  public record GetStats(String pool) implements java.io.Serializable {}

  /**
   * A pool's size and occupancy now, and what it did since start: activations refused because it
   * was full, waits that ran out, and its committed changes ({@link PoolStats}).
   */
  public record StatsReport(String pool, int size, int active, int available, int waiting, long rejected,
      long timedOut, PoolStats.Report since) implements java.io.Serializable {}

  /** Creates a pool of {@code size} fresh tokens. */
  public record CreatePool(PoolSettings settings, int size) implements java.io.Serializable {}

  public record GetPool(String name) implements java.io.Serializable {}

  /** A page of the pools, by name; pages count from 1. */
  public record ListPools(int page, int limit) implements java.io.Serializable {}

  /** Changes the fields of a pool that {@code patch} names. */
  public record UpdatePool(String name, PoolDefinitions.Patch patch) implements java.io.Serializable {}

  /** @param force end the active leases (as {@code cleared}) rather than refuse */
  public record DeletePool(String name, boolean force) implements java.io.Serializable {}

  /** A pool as {@code GET /api/pools/:pool} shows it. */
  public record PoolInfo(PoolSettings settings, int size, int active, int available, int waiting, Instant createdAt) implements java.io.Serializable {}

  public record PoolList(List<PoolInfo> pools, int total, int page, int limit) implements java.io.Serializable {}

  /** A pool was deleted, ending {@code cleared} leases. */
  public record Deleted(String name, int cleared) implements java.io.Serializable {}

  public record TokenList(List<TokenView> tokens) implements java.io.Serializable {}

  public record Cleared(int count) implements java.io.Serializable {}

  /**
   * @param writeLagMillis how long the oldest change not yet committed has waited (0 if none)
   * @param sinceConfirmedWriteMillis how long ago the newest write the database confirmed was sent
   * @param degraded why the pool cannot take changes now, or null when it can
   * @param nextChangeId the id the next committed change will get ({@link CommittedChanges#NO_IDS} if none):
   *     where a live stream that starts following now begins
   */
  public record StatusReport(int size, int active, int available, long lastGeneration, long backlog,
      long writeLagMillis, long sinceConfirmedWriteMillis, String persistenceFailure, boolean instanceLockHeld,
      String degraded, long nextChangeId) implements java.io.Serializable {
    public boolean healthy() {
      return degraded == null;
    }
  }

  /**
   * A local request whose answer goes straight back to the caller's context instead of through a
   * reply message: no reply address to register and no timeout timer per call, which is a large
   * part of a request/reply's cost. The request itself still travels over the event bus to the pool.
   */
  public record LocalCall(Object request, Promise<Object> result, Context caller) {
    void complete(AsyncResult<?> outcome) {
      caller.runOnContext(v -> {
        if (outcome.succeeded()) {
          result.complete(outcome.result());
        } else {
          result.fail(outcome.cause());
        }
      });
    }
  }

  /** Lets the local records travel by reference; call once per Vert.x instance, before deploying. */
  public static void registerCodecs(EventBus bus) {
    LocalRecordCodec.registerAll(bus,
        Activate.class, Grant.class, Release.class, Renew.class, GetToken.class, ListTokens.class, ClearActive.class,
        TokenUsages.class, History.UserUsages.class, PoolStatus.class, GetStats.class, StatsReport.class, TokenView.class, TokenList.class,
        Cleared.class, History.TokenUsageList.class, History.UserUsagePage.class, StatusReport.class,
        LocalCall.class, CancelWait.class, Revoke.class, CreatePool.class, GetPool.class, ListPools.class,
        UpdatePool.class, DeletePool.class, PoolInfo.class, PoolList.class, Deleted.class);
    CommittedChanges.registerCodec(bus);
  }

  // ---- parsing of the JSON input shape ----

  /**
   * An activation on the JSON address: the pool is the {@code pool} field ({@code default} if
   * absent), the Idempotency-Key, if any, the {@code idempotency_key} field. It does not wait: a bus
   * caller's send timeout cannot be seen here, so a grant could outlive a caller that gave up.
   */
  public static Activate activate(JsonObject in) {
    UUID user = requiredUuid(in, "user_id");
    Object key = in.getValue("idempotency_key");
    if (key == null || key instanceof String text && isIdempotencyKey(text)) {
      return new Activate(pool(in), user, (String) key, null);
    }
    throw badRequest("Invalid idempotency_key. Must be 1 to 255 visible ASCII characters.");
  }

  /**
   * An activation over HTTP: the body (whose fields other than {@code user_id} are ignored), the
   * values of its Idempotency-Key header, of which there may be one, and how long it may wait.
   */
  public static Activate activate(String pool, JsonObject body, List<String> idempotencyKeyHeaders, WaitHandle wait) {
    UUID user = requiredUuid(body, "user_id");
    if (idempotencyKeyHeaders.isEmpty()) {
      return new Activate(pool, user, null, wait);
    }
    String key = idempotencyKeyHeaders.get(0);
    if (idempotencyKeyHeaders.size() > 1) {
      throw badRequest("Send at most one Idempotency-Key header.");
    }
    if (!isIdempotencyKey(key)) {
      throw badRequest("Invalid Idempotency-Key header. Must be 1 to 255 visible ASCII characters.");
    }
    return new Activate(pool, user, key, wait);
  }

  /**
   * The pool a JSON input names in its {@code pool} field, {@code default} if it names none. A
   * name no pool could have is not found, as a pool that does not exist.
   */
  public static String pool(JsonObject in) {
    Object raw = in.getValue("pool");
    if (raw == null) {
      return TokenPool.DEFAULT;
    }
    if (raw instanceof String name && PoolDefinitions.isName(name)) {
      return name;
    }
    throw PoolDefinitions.notFound();
  }

  /** 1 to 255 visible ASCII characters (no space): what a header carries safely and logs read plainly. */
  static boolean isIdempotencyKey(String text) {
    if (text.isEmpty() || text.length() > MAX_IDEMPOTENCY_KEY_LENGTH) {
      return false;
    }
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c < '!' || c > '~') {
        return false;
      }
    }
    return true;
  }

  public static Release release(JsonObject in) {
    return new Release(pool(in), requiredUuid(in, "token_id"), requiredUuid(in, "user_id"), generation(in));
  }

  public static Renew renew(JsonObject in) {
    return new Renew(pool(in), requiredUuid(in, "token_id"), requiredUuid(in, "user_id"), generation(in));
  }

  public static Revoke revoke(JsonObject in) {
    return new Revoke(pool(in), requiredUuid(in, "token_id"));
  }

  public static GetToken getToken(JsonObject in) {
    return new GetToken(pool(in), requiredUuid(in, "token_id"));
  }

  public static ListTokens listTokens(JsonObject in) {
    String pool = pool(in);
    Object state = in.getValue("state");
    if (state == null || "".equals(state) || "all".equals(state)) {
      return new ListTokens(pool, null);
    }
    if ("available".equals(state)) {
      return new ListTokens(pool, TokenState.AVAILABLE);
    }
    if ("active".equals(state)) {
      return new ListTokens(pool, TokenState.ACTIVE);
    }
    throw badRequest("Invalid state filter. Must be 'available', 'active', or 'all'.");
  }

  public static ClearActive clearActive(JsonObject in) {
    return new ClearActive(pool(in));
  }

  public static TokenUsages tokenUsages(JsonObject in) {
    return new TokenUsages(pool(in), requiredUuid(in, "token_id"));
  }

  public static History.UserUsages userUsages(JsonObject in) {
    UUID user = requiredUuid(in, "user_id");
    Instant from = JsonInput.optionalInstant(in, "from");
    Instant to = JsonInput.optionalInstant(in, "to");
    if (from != null && to != null && !from.isBefore(to)) {
      throw badRequest("Invalid range: 'from' must be before 'to'.");
    }
    int limit = DEFAULT_HISTORY_LIMIT;
    Object rawLimit = in.getValue("limit");
    if (rawLimit != null && !"".equals(rawLimit)) {
      limit = parseLimit(rawLimit);
    }
    Object pool = in.getValue("pool");
    if (pool != null && !"".equals(pool) && !(pool instanceof String name && PoolDefinitions.isName(name))) {
      throw badRequest("Invalid pool. Must be a pool name: " + PoolDefinitions.NAME_RULE + ".");
    }
    return new History.UserUsages(user, from, to, limit, cursor(in.getValue("cursor")),
        "".equals(pool) ? null : (String) pool);
  }

  /** The opaque {@code next_cursor} for a page that ends just after {@code generation}. */
  public static String encodeCursor(long generation) {
    return Base64.getUrlEncoder().withoutPadding()
        .encodeToString(("g" + generation).getBytes(StandardCharsets.US_ASCII));
  }

  private static Long cursor(Object raw) {
    if (raw == null || "".equals(raw)) {
      return null;
    }
    if (raw instanceof String text && text.length() <= 40) {
      try {
        String decoded = new String(Base64.getUrlDecoder().decode(text), StandardCharsets.US_ASCII);
        if (decoded.startsWith("g")) {
          long generation = Long.parseLong(decoded.substring(1));
          if (generation > 0) {
            return generation;
          }
        }
      } catch (IllegalArgumentException e) {
        // reported below (NumberFormatException is an IllegalArgumentException)
      }
    }
    throw badRequest("Invalid cursor. Pass the next_cursor of a previous page unchanged.");
  }

  private static int parseLimit(Object raw) {
    long value;
    try {
      value = raw instanceof Number n && n.doubleValue() == n.longValue() ? n.longValue()
          : raw instanceof String s ? Long.parseLong(s) : -1;
    } catch (NumberFormatException e) {
      value = -1;
    }
    if (value < 1 || value > MAX_HISTORY_LIMIT) {
      throw badRequest("Invalid limit. Must be an integer from 1 to " + MAX_HISTORY_LIMIT + ".");
    }
    return (int) value;
  }

  private static Long generation(JsonObject in) {
    Object raw = in.getValue("generation");
    if (raw == null) {
      return null;
    }
    if ((raw instanceof Integer || raw instanceof Long) && ((Number) raw).longValue() > 0) {
      return ((Number) raw).longValue();
    }
    throw badRequest("Invalid generation. Must be a positive integer.");
  }

  /**
   * A required UUID field. Absent, null or empty is "missing"; anything that is not a UUID string
   * in the 8-4-4-4-12 hex form (any letter case) is "invalid format".
   */
  static UUID requiredUuid(JsonObject in, String field) {
    Object raw = in.getValue(field);
    if (raw == null || "".equals(raw)) {
      throw badRequest("Missing required parameter: " + field);
    }
    if (raw instanceof String text && isUuid(text)) {
      return UUID.fromString(text);
    }
    throw badRequest("Invalid " + field + " format. Must be a valid UUID.");
  }

  static boolean isUuid(String text) {
    if (text.length() != 36) {
      return false;
    }
    for (int i = 0; i < 36; i++) {
      char c = text.charAt(i);
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        if (c != '-') {
          return false;
        }
      } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        return false;
      }
    }
    return true;
  }

  private static ApiException badRequest(String message) {
    return new ApiException(ErrorCode.BAD_REQUEST, message);
  }
}
