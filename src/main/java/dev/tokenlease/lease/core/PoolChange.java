package dev.tokenlease.lease.core;

import java.util.UUID;

/**
 * The state of one usage, and of its token, right after a pool mutation. Changes carry absolute
 * values rather than deltas, so writing them twice (a retried batch) is harmless and only the last
 * change per usage and per token in a batch needs writing.
 *
 * <p>Times are epoch milliseconds; {@link #NO_TIME} stands for "not set".
 *
 * @param tokenEvictedUserId the token's eviction notice (its last evicted lease's holder), or null
 * @param tokenEvictedGeneration that lease's generation, 0 with no notice
 * @param idempotencyKey the Idempotency-Key the usage was granted under, or null
 * @param evictedGeneration the lease the usage's grant evicted, 0 if it took a free token
 * @param pool the name of the pool the token belongs to
 * @param tokenNoticeRevoked whether the token's notice is of a revocation rather than an eviction
 */
public record PoolChange(
    Kind kind,
    long generation,
    UUID tokenId,
    UUID userId,
    long startedAtMillis,
    long expiresAtMillis,
    long endedAtMillis,
    EndReason endReason,
    long tokenActivatedAtMillis,
    long tokenReleasedAtMillis,
    long tokenUsageCount,
    UUID tokenEvictedUserId,
    long tokenEvictedGeneration,
    String idempotencyKey,
    long evictedGeneration,
    String pool,
    boolean tokenNoticeRevoked) implements java.io.Serializable {

  public static final long NO_TIME = Token.NO_TIME;

  /** A change of the pool {@code default} whose token's notice, if any, is of an eviction. */
  public PoolChange(Kind kind, long generation, UUID tokenId, UUID userId, long startedAtMillis, long expiresAtMillis,
      long endedAtMillis, EndReason endReason, long tokenActivatedAtMillis, long tokenReleasedAtMillis,
      long tokenUsageCount, UUID tokenEvictedUserId, long tokenEvictedGeneration, String idempotencyKey,
      long evictedGeneration) {
    this(kind, generation, tokenId, userId, startedAtMillis, expiresAtMillis, endedAtMillis, endReason,
        tokenActivatedAtMillis, tokenReleasedAtMillis, tokenUsageCount, tokenEvictedUserId, tokenEvictedGeneration,
        idempotencyKey, evictedGeneration, TokenPool.DEFAULT, false);
  }

  public enum Kind {
    GRANTED, RENEWED, ENDED
  }

  static PoolChange of(String pool, Kind kind, Token token, Lease lease, long endedAtMillis, EndReason reason) {
    return new PoolChange(
        kind,
        lease.generation,
        token.id,
        lease.userId,
        lease.startedAtMillis,
        lease.expiresAtMillis,
        endedAtMillis,
        reason,
        token.activatedAtMillis,
        token.releasedAtMillis,
        token.usageCount,
        token.evictedUserId,
        token.evictedGeneration,
        lease.idempotencyKey,
        lease.evicted == null ? 0 : lease.evicted.generation(),
        pool,
        token.noticeRevoked);
  }

  /** The name used on the {@code tokens.events} address. */
  public String eventType() {
    return kind == Kind.ENDED ? endReason.wireName() : kind.name().toLowerCase(java.util.Locale.ROOT);
  }
}
