package dev.tokenlease.lease.core;

/** What an activation does when every token of the pool is held. */
public enum Overflow {
  /** Evict the oldest lease and grant its token (the seed's behaviour), naming the evicted lease. */
  EVICT_OLDEST,
  /** Refuse with 409 and a Retry-After of the seconds until the next lease is due to end. */
  REJECT;

  public static Overflow fromWireName(String name) {
    return valueOf(name.toUpperCase(java.util.Locale.ROOT));
  }
}
