package dev.tokenlease.lease.core;

import java.util.UUID;

/**
 * One pooled token. A token is either available (in the pool's queue of free tokens, linked
 * intrusively so that moving it costs O(1) and no extra node objects) or on lease (in the pool's
 * {@link ActiveLeases}).
 */
final class Token {
  static final long NO_TIME = Long.MIN_VALUE;

  final UUID id;
  final int seq;
  long activatedAtMillis = NO_TIME;
  long releasedAtMillis = NO_TIME;
  long usageCount;
  Lease lease;
  /**
   * The eviction notice: the holder and generation of the last lease evicted or revoked from this
   * token, so that holder is told so rather than "held by another user". Kept until the token is
   * evicted or revoked again or leased again to that user; null and 0 when there is none.
   */
  UUID evictedUserId;
  long evictedGeneration;
  /** Whether that notice is of a revocation rather than an eviction. */
  boolean noticeRevoked;
  /** Its place in {@link ActiveLeases} while on lease, else -1. */
  int heapIndex = -1;
  /** When it was last added there: the order among leases that end at the same instant. */
  long heapOrder;

  Token prev;
  Token next;

  Token(UUID id, int seq) {
    this.id = id;
    this.seq = seq;
  }
}
