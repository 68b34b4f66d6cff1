package dev.tokenlease.lease.core;

import java.util.UUID;

/**
 * The open lease on a token. Wall-clock fields are what is reported and stored; the deadline is
 * on the monotonic clock so that a wall-clock step neither ends a lease early nor keeps it late.
 */
final class Lease {
  final UUID userId;
  final long generation;
  final long startedAtMillis;
  /** When it was granted on the monotonic clock: how long it has been held is measured from here. */
  final long startedNanos;
  /** The Idempotency-Key it was granted under, or null. */
  final String idempotencyKey;
  /** The lease its grant evicted to take the token, or null. */
  final Grant.Evicted evicted;
  long expiresAtMillis;
  long deadlineNanos;

  Lease(UUID userId, long generation, long startedAtMillis, long startedNanos, String idempotencyKey,
      Grant.Evicted evicted, long expiresAtMillis, long deadlineNanos) {
    this.userId = userId;
    this.generation = generation;
    this.startedAtMillis = startedAtMillis;
    this.startedNanos = startedNanos;
    this.idempotencyKey = idempotencyKey;
    this.evicted = evicted;
    this.expiresAtMillis = expiresAtMillis;
    this.deadlineNanos = deadlineNanos;
  }
}
