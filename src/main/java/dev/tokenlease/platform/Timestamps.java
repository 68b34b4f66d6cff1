package dev.tokenlease.platform;

import java.time.Instant;

/**
 * Formats instants as the API shows them ({@code 2025-12-19T15:12:02Z}: UTC, whole seconds). Most
 * timestamps in a busy second are the same second, so the last one formatted is kept; formatting
 * through {@code Instant.toString} is otherwise a large share of an activation's cost.
 */
public final class Timestamps {
  private record Formatted(long epochSecond, String text) {}

  // Shared by event loops; a stale or lost update only costs one more formatting.
  private static volatile Formatted last = new Formatted(Long.MIN_VALUE, "");

  private Timestamps() {}

  public static String format(long epochMillis) {
    long second = Math.floorDiv(epochMillis, 1000L);
    Formatted cached = last;
    if (cached.epochSecond() == second) {
      return cached.text();
    }
    String text = Instant.ofEpochSecond(second).toString();
    last = new Formatted(second, text);
    return text;
  }
}
