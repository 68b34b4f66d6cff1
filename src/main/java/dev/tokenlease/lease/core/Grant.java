package dev.tokenlease.lease.core;

import java.util.UUID;

/**
 * What an activation answers.
 *
 * @param lease the token as leased to the caller
 * @param evicted the lease that was evicted to make room for this one (the pool was full), or null
 * @param repeated whether this answers a retry under an Idempotency-Key of a lease granted before,
 *     rather than a new grant; nothing changed
 */
public record Grant(TokenView lease, Evicted evicted, boolean repeated) implements java.io.Serializable {
  /**
   * A lease that an activation ended to take its token.
   *
   * @param heldMillis how long the evicted lease had been held, from its grant to the eviction, on
   *     the monotonic clock
   */
  public record Evicted(UUID tokenId, UUID userId, long generation, long heldMillis) implements java.io.Serializable {}
}
