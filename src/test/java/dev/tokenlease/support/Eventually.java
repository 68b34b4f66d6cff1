package dev.tokenlease.support;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * Waits for something a test cannot be told about (a background write, a lost connection noticed,
 * a lease run out) by polling it until a deadline, so the test goes on as soon as it holds and
 * fails, saying what it waited for, when it never does. Exceptions from the probe fail at once.
 */
public final class Eventually {
  private static final Duration POLL_INTERVAL = Duration.ofMillis(20);

  private Eventually() {}

  /** Polls {@code condition} until it holds; fails naming {@code what} if it does not within {@code timeout}. */
  public static void await(String what, Duration timeout, Callable<Boolean> condition) throws Exception {
    until(what, timeout, condition, Boolean.TRUE::equals);
  }

  /**
   * Polls {@code probe} until {@code done} accepts what it returns, and returns that; fails naming
   * {@code what} and the last value seen if that does not happen within {@code timeout}.
   */
  public static <T> T until(String what, Duration timeout, Callable<T> probe, Predicate<? super T> done)
      throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      T value = probe.call();
      if (done.test(value)) {
        return value;
      }
      if (System.nanoTime() - deadline >= 0) {
        throw new AssertionError("Waited " + timeout + " for " + what + "; last seen: " + value);
      }
      // The pause between two polls, not a wait for anything.
      Thread.sleep(POLL_INTERVAL.toMillis());
    }
  }
}
