package dev.tokenlease.lease.core;

import java.util.Locale;

/** What an activation does when every token of the pool is held. */
public enum Overflow {
  /** Evict the lease due to end first and grant its token (the seed's behaviour), naming the evicted lease. */
  EVICT_OLDEST,
  /** Refuse with 409 and a Retry-After of the seconds until the next lease is due to end. */
  REJECT,
  /** Wait, first come first served, until a token is free or the wait is over; then refuse as {@link #REJECT}. */
  WAIT;

  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** @throws IllegalArgumentException for a name that is none of them */
  public static Overflow fromWireName(String name) {
    for (Overflow policy : values()) {
      if (policy.wireName().equals(name)) {
        return policy;
      }
    }
    throw new IllegalArgumentException("unknown overflow policy: " + name);
  }
}
