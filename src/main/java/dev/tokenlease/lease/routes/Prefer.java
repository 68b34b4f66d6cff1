package dev.tokenlease.lease.routes;

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The {@code wait} preference of RFC 7240 ({@code Prefer: wait=10}): how many seconds a caller is
 * willing to wait for an answer. Preferences are hints: one that cannot be read is ignored, as the
 * RFC asks, and the pool's {@code max_wait} caps the wait anyway.
 */
final class Prefer {
  private Prefer() {}

  /** No preference: the caller waits as long as the pool lets it. */
  static final long AS_LONG_AS_THE_POOL_ALLOWS = Long.MAX_VALUE;

  /** The wait the headers ask for, in nanoseconds; the first readable {@code wait} wins. */
  static long waitNanos(List<String> headers) {
    for (String header : headers) {
      for (String preference : header.split(",")) {
        String token = preference.split(";", 2)[0].trim();
        int eq = token.indexOf('=');
        if (eq <= 0 || !token.substring(0, eq).trim().equalsIgnoreCase("wait")) {
          continue;
        }
        String value = token.substring(eq + 1).trim();
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
          value = value.substring(1, value.length() - 1);
        }
        if (value.matches("[0-9]{1,9}")) {
          return TimeUnit.SECONDS.toNanos(Long.parseLong(value));
        }
      }
    }
    return AS_LONG_AS_THE_POOL_ALLOWS;
  }
}
