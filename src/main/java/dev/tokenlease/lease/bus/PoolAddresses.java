package dev.tokenlease.lease.bus;

/**
 * Every event-bus address of the service. {@code tokens.pool.*} are local and carry the records of
 * {@link PoolMessages}; {@code tokens.api.*} take and give JSON (the HTTP bodies) and are registered
 * cluster-wide, so other verticles can lease tokens without HTTP. Each JSON address takes an
 * optional {@code pool} field naming the pool ({@code default} if absent).
 */
public final class PoolAddresses {
  private PoolAddresses() {}

  public static final String ACTIVATE = "tokens.pool.activate";
  public static final String RELEASE = "tokens.pool.release";
  public static final String RENEW = "tokens.pool.renew";
  public static final String GET = "tokens.pool.get";
  public static final String LIST = "tokens.pool.list";
  public static final String CLEAR = "tokens.pool.clear";
  public static final String TOKEN_USAGES = "tokens.pool.token-usages";
  public static final String USER_USAGES = "tokens.pool.user-usages";
  public static final String STATUS = "tokens.pool.status";
  /** Counters and hold times since start, with the pool's size and occupancy now. */
  public static final String STATS = "tokens.pool.stats";
  public static final String REVOKE = "tokens.pool.revoke";
  /** A waiting activation's caller went away (local only, no answer). */
  public static final String CANCEL_WAIT = "tokens.pool.cancel-wait";
  public static final String CREATE_POOL = "tokens.pool.create-pool";
  public static final String GET_POOL = "tokens.pool.get-pool";
  public static final String LIST_POOLS = "tokens.pool.list-pools";
  public static final String UPDATE_POOL = "tokens.pool.update-pool";
  public static final String DELETE_POOL = "tokens.pool.delete-pool";

  public static final String JSON_ACTIVATE = "tokens.api.activate";
  public static final String JSON_RELEASE = "tokens.api.release";
  public static final String JSON_RENEW = "tokens.api.renew";
  public static final String JSON_GET = "tokens.api.get";
  public static final String JSON_LIST = "tokens.api.list";
  public static final String JSON_CLEAR = "tokens.api.clear";
  public static final String JSON_TOKEN_USAGES = "tokens.api.token-usages";
  public static final String JSON_USER_USAGES = "tokens.api.user-usages";
  public static final String JSON_STATS = "tokens.api.stats";
  public static final String JSON_REVOKE = "tokens.api.revoke";
  public static final String JSON_CREATE_POOL = "tokens.api.create-pool";
  public static final String JSON_GET_POOL = "tokens.api.get-pool";
  public static final String JSON_LIST_POOLS = "tokens.api.list-pools";
  public static final String JSON_UPDATE_POOL = "tokens.api.update-pool";
  public static final String JSON_DELETE_POOL = "tokens.api.delete-pool";

  /** Every pool change is published here as JSON. */
  public static final String EVENTS = "tokens.events";
  /**
   * The same committed batches as {@link #EVENTS}, local only and by reference ({@link CommittedChanges}),
   * only while they carry ids: what the live streams of the HTTP verticles follow.
   */
  public static final String COMMITTED = "tokens.pool.committed";
}
