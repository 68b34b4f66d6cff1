package dev.tokenlease.lease.core;

import java.util.List;
import java.util.UUID;

/**
 * What the pool is rebuilt from at start-up: every token in creation order, the leases that were
 * open when the service last stopped, the last generation number handed out, and the keys of
 * recently ended keyed leases.
 *
 * @param activationsBlockedUntilMillis epoch millis before which no token may be granted (after an
 *     unclean stop in memory-ack mode), or {@link PoolChange#NO_TIME}
 */
public record PoolSnapshot(
    List<StoredToken> tokens,
    List<StoredLease> openLeases,
    long lastGeneration,
    long activationsBlockedUntilMillis,
    List<EndedKey> endedKeys) {

  /** A snapshot without keys of ended leases. */
  public PoolSnapshot(List<StoredToken> tokens, List<StoredLease> openLeases, long lastGeneration,
      long activationsBlockedUntilMillis) {
    this(tokens, openLeases, lastGeneration, activationsBlockedUntilMillis, List.of());
  }

  /**
   * The Idempotency-Key of a lease that has ended but was granted less than one TTL ago: a retry
   * under it must still hear that its lease ended, after a restart too, rather than take a new one.
   */
  public record EndedKey(String key, UUID userId, UUID tokenId, long generation, long startedAtMillis) {}

  /**
   * A token row; times are epoch millis or {@link PoolChange#NO_TIME}.
   *
   * @param evictedUserId the holder of the token's last evicted (or revoked) lease while its notice
   *     holds, else null (and {@code evictedGeneration} 0)
   * @param noticeRevoked whether that notice is of a revocation
   */
  public record StoredToken(
      UUID id, int seq, long activatedAtMillis, long releasedAtMillis, long usageCount,
      UUID evictedUserId, long evictedGeneration, boolean noticeRevoked) {
    /** A token whose notice, if any, is of an eviction. */
    public StoredToken(UUID id, int seq, long activatedAtMillis, long releasedAtMillis, long usageCount,
        UUID evictedUserId, long evictedGeneration) {
      this(id, seq, activatedAtMillis, releasedAtMillis, usageCount, evictedUserId, evictedGeneration, false);
    }

    /** A token never leased. */
    public static StoredToken fresh(UUID id, int seq) {
      return new StoredToken(id, seq, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0, false);
    }
  }

  /**
   * A usage row whose {@code ended_at} is still null.
   *
   * @param idempotencyKey the key it was granted under, or null
   * @param evicted the lease its grant evicted, if it has a key (for a retry's answer), else null
   */
  public record StoredLease(
      long generation, UUID tokenId, UUID userId, long startedAtMillis, long expiresAtMillis,
      String idempotencyKey, Grant.Evicted evicted) {}
}
