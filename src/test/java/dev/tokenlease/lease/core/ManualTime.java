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
  private Duration pauseAtWallRead = Duration.ZERO;

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

  /**
   * The thread reading the clocks stalls (GC, SIGSTOP) just before its next wall-clock read: both
   * clocks move by this much first.
   */
  void pauseAtNextWallRead(Duration pause) {
    pauseAtWallRead = pause;
  }

  long nanoTime() {
    return nanos;
  }

  @Override
  public Instant instant() {
    if (!pauseAtWallRead.isZero()) {
      Duration pause = pauseAtWallRead;
      pauseAtWallRead = Duration.ZERO;
      advance(pause);
    }
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
