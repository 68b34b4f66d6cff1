package dev.tokenlease.lease.core;

import java.time.Duration;

/**
 * How one pool leases its tokens. Changing them applies to what happens afterwards: grants and
 * renewals use the TTL current at the time; the caps and limits are checked when they apply.
 *
 * @param name the pool's name, {@code [a-z0-9][a-z0-9_-]{0,62}}
 * @param leaseTtl how long a grant or a renewal lasts
 * @param overflow what an activation does when every token is held
 * @param maxWait how long an activation waits for a token under {@link Overflow#WAIT}; zero otherwise
 * @param maxHold how long after its grant a lease may last at most, however often it is renewed;
 *     null for no cap
 * @param maxLeasesPerUser the most leases one user may hold at once; 0 for no limit
 */
public record PoolSettings(String name, Duration leaseTtl, Overflow overflow, Duration maxWait, Duration maxHold,
    int maxLeasesPerUser) implements java.io.Serializable {
  public PoolSettings {
    if (leaseTtl.isNegative() || leaseTtl.isZero()) {
      throw new IllegalArgumentException("lease TTL must be positive: " + leaseTtl);
    }
    if (maxWait == null) {
      maxWait = Duration.ZERO;
    }
    if (maxHold != null && maxHold.compareTo(leaseTtl) < 0) {
      throw new IllegalArgumentException("max hold " + maxHold + " is shorter than the lease TTL " + leaseTtl);
    }
  }

  /** The seed's pool: evicts the oldest lease when full, no cap, no limit. */
  public static PoolSettings evicting(String name, Duration leaseTtl) {
    return new PoolSettings(name, leaseTtl, Overflow.EVICT_OLDEST, Duration.ZERO, null, 0);
  }
}
