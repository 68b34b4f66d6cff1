package dev.tokenlease.lease.core;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/** A wall clock and a monotonic clock that tests move by hand, together or (a clock step) apart. */
final class ManualTime extends Clock {
  private Instant wall;
  private long nanos = 1_000_000_000L;

  ManualTime(Instant start) {
    this.wall = start;
  }

  /** Time passes: both clocks move. */
  void advance(Duration duration) {
    wall = wall.plus(duration);
    nanos += duration.toNanos();
  }

  /** The wall clock is set, say by NTP; monotonic time does not move. */
  void stepWall(Duration step) {
    wall = wall.plus(step);
  }

  long nanoTime() {
    return nanos;
  }

  @Override
  public Instant instant() {
    return wall;
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    throw new UnsupportedOperationException();
  }
}
