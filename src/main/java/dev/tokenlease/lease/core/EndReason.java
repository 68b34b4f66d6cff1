package dev.tokenlease.lease.core;

/** Why a lease ended; stored with the usage and shown in per-user history. */
public enum EndReason {
  RELEASED, EXPIRED, EVICTED, CLEARED, REVOKED;

  public String wireName() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }

  public static EndReason fromWireName(String name) {
    return valueOf(name.toUpperCase(java.util.Locale.ROOT));
  }
}
