package dev.tokenlease.lease.core;

/** Whether a token is leased right now, as the API names it. */
public enum TokenState {
  AVAILABLE, ACTIVE;

  public String wireName() {
    return this == ACTIVE ? "active" : "available";
  }
}
