package dev.tokenlease.m2m;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Token buckets by key (a client id, or an IP address), refilled greedily at {@code perSecond} up to
 * {@code burst}. A bucket that has refilled completely is indistinguishable from a new one, so such
 * buckets are dropped periodically and when the map grows large (at most once a second): memory
 * stays bounded by the keys seen recently. Keys a caller can invent (client ids on the token
 * endpoint) are only reached after the per-IP limit, which bounds how fast they can be made.
 */
public final class RateLimiter {
  private static final int SWEEP_ABOVE = 50_000;

  private final int perSecond;
  private final int burst;
  private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();
  /** When a crowded map was last swept: at most one sweep a second, whatever the traffic. */
  private final java.util.concurrent.atomic.AtomicLong lastSweep = new java.util.concurrent.atomic.AtomicLong(System.nanoTime());

  public RateLimiter(int perSecond, int burst) {
    this.perSecond = perSecond;
    this.burst = burst;
  }

  public boolean enabled() {
    return perSecond > 0;
  }

  /** Takes one request from {@code key}'s bucket: 0 when allowed, else whole seconds to wait (≥ 1). */
  public long acquire(String key) {
    if (!enabled()) {
      return 0;
    }
    Bucket bucket = buckets.get(key);
    if (bucket == null) {
      long last = lastSweep.get();
      if (buckets.size() >= SWEEP_ABOVE && System.nanoTime() - last > 1_000_000_000L
          && lastSweep.compareAndSet(last, System.nanoTime())) {
        sweep();
      }
      bucket = buckets.computeIfAbsent(key, k -> newBucket());
    }
    ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(1);
    if (probe.isConsumed()) {
      return 0;
    }
    return Math.max(1, (probe.getNanosToWaitForRefill() + 999_999_999L) / 1_000_000_000L);
  }

  /** Drops buckets that are full again (idle keys). */
  public void sweep() {
    buckets.values().removeIf(b -> b.getAvailableTokens() >= burst);
  }

  int size() {
    return buckets.size();
  }

  private Bucket newBucket() {
    return Bucket.builder()
        .addLimit(limit -> limit.capacity(burst).refillGreedy(perSecond, Duration.ofSeconds(1)))
        .build();
  }
}
