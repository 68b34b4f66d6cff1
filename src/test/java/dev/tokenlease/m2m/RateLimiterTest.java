package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("RateLimiter")
class RateLimiterTest {
  @Test
  @DisplayName("a key gets its burst, then waits; keys do not share buckets; 0 per second turns it off")
  void buckets() {
    RateLimiter limiter = new RateLimiter(1, 2);
    assertThat(limiter.acquire("a")).isZero();
    assertThat(limiter.acquire("a")).isZero();
    assertThat(limiter.acquire("a")).isEqualTo(1);
    assertThat(limiter.acquire("b")).isZero();
    RateLimiter off = new RateLimiter(0, 2);
    for (int i = 0; i < 100; i++) {
      assertThat(off.acquire("a")).isZero();
    }
  }

  @Test
  @DisplayName("buckets that have refilled are dropped by a sweep; used ones are kept")
  void sweep() throws InterruptedException {
    RateLimiter limiter = new RateLimiter(1_000_000, 5);
    limiter.acquire("idle");
    RateLimiter slow = new RateLimiter(1, 5);
    slow.acquire("busy");
    Thread.sleep(5); // the fast bucket refills within microseconds
    limiter.sweep();
    slow.sweep();
    assertThat(limiter.size()).isZero();
    assertThat(slow.size()).isEqualTo(1);
  }
}
