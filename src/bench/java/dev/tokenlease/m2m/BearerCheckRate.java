package dev.tokenlease.m2m;

import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * What checking a bearer token costs on its own: {@link ActiveTokens#find} (SHA-256 of the
 * presented value, a map lookup, the expiry test) on one thread, with {@code live} tokens held.
 */
public final class BearerCheckRate {
  private BearerCheckRate() {}

  /** Checks per second over about three seconds. */
  public static double measure(int live) {
    ActiveTokens tokens = new ActiveTokens();
    Instant expires = Instant.now().plus(Duration.ofHours(1));
    String[] values = new String[live];
    for (int i = 0; i < live; i++) {
      values[i] = Secrets.generate();
      tokens.put(Secrets.hex(Secrets.hash(values[i])),
          new Principal(UUID.randomUUID(), "c" + i, "t", Set.of("tokens:write"), Instant.now(), expires));
    }
    long found = 0;
    long checks = 0;
    long start = System.nanoTime();
    long end = start + TimeUnit.SECONDS.toNanos(3);
    while (System.nanoTime() < end) {
      Instant now = Instant.now();
      for (int i = 0; i < 1000; i++) {
        if (tokens.find(values[(int) (checks++ % live)], now) != null) {
          found++;
        }
      }
    }
    if (found != checks) {
      throw new IllegalStateException("a live token was not found");
    }
    return checks / ((System.nanoTime() - start) / 1e9);
  }
}
