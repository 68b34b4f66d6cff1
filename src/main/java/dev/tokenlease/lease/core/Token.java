package dev.tokenlease.lease.core;

import java.util.UUID;

/**
 * One pooled token. A token is always in exactly one of the pool's two queues (available or
 * active), linked intrusively so that moving it costs O(1) and no extra node objects.
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
   * The eviction notice: the holder and generation of the last lease evicted from this token, so
   * that holder is told "evicted" rather than "held by another user". Kept until the token is
   * evicted again or leased again to that user; null and 0 when there is none.
   */
  UUID evictedUserId;
  long evictedGeneration;

  Token prev;
  Token next;

  Token(UUID id, int seq) {
    this.id = id;
    this.seq = seq;
  }
}
