package dev.tokenlease.lease.core;

import java.util.List;
import org.HdrHistogram.Histogram;

/**
 * What a pool has done since the service started, counted from its committed changes (so a change
 * that was refused and undone is never counted): leases granted and how they ended, how long the
 * ended leases were held, and how long waiting activations waited (HdrHistograms of milliseconds,
 * three significant digits). Not kept across restarts: history in PostgreSQL is the record of what
 * happened before.
 */
public final class PoolStats {
  /** Leases longer than this (a week) are recorded as this long. */
  private static final long MAX_TRACKED_MS = 7L * 24 * 3600 * 1000;

  /** The counters and hold-time percentiles at one moment; times in milliseconds. */
  public record Report(long granted, long released, long expired, long evicted, long revoked, long cleared,
      long holdP50, long holdP90, long holdP99, long holdMax, long waitP50, long waitP99, long waitMax) implements java.io.Serializable {}

  private final Histogram hold = new Histogram(MAX_TRACKED_MS, 3);
  /** How long waiting activations waited, granted or not (at most 30 s each). */
  private final Histogram wait = new Histogram(60_000, 3);
  private long revoked;
  private long granted;
  private long released;
  private long expired;
  private long evicted;
  private long cleared;

  /** Counts a committed batch. */
  public void committed(List<PoolChange> changes) {
    for (PoolChange change : changes) {
      committed(change);
    }
  }

  /** Counts one committed change. */
  public void committed(PoolChange change) {
    switch (change.kind()) {
      case GRANTED -> granted++;
      case RENEWED -> { }
      case ENDED -> ended(change);
    }
  }

  /** Leases granted since start (committed). */
  public long granted() {
    return granted;
  }

  /** Leases that ended so since start (committed). */
  public long ended(EndReason reason) {
    return switch (reason) {
      case RELEASED -> released;
      case EXPIRED -> expired;
      case EVICTED -> evicted;
      case CLEARED -> cleared;
      case REVOKED -> revoked;
    };
  }

  /** Records how long an activation waited for a token before it was granted one or refused. */
  public void waited(long millis) {
    wait.recordValue(Math.max(0, Math.min(millis, wait.getHighestTrackableValue())));
  }

  private void ended(PoolChange change) {
    switch (change.endReason()) {
      case RELEASED -> released++;
      case EXPIRED -> expired++;
      case EVICTED -> evicted++;
      case CLEARED -> cleared++;
      case REVOKED -> revoked++;
    }
    long held = change.endedAtMillis() - change.startedAtMillis();
    hold.recordValue(Math.max(0, Math.min(held, MAX_TRACKED_MS)));
  }

  public Report report() {
    boolean none = hold.getTotalCount() == 0;
    boolean noWaits = wait.getTotalCount() == 0;
    return new Report(granted, released, expired, evicted, revoked, cleared,
        none ? 0 : hold.getValueAtPercentile(50), none ? 0 : hold.getValueAtPercentile(90),
        none ? 0 : hold.getValueAtPercentile(99), none ? 0 : hold.getMaxValue(),
        noWaits ? 0 : wait.getValueAtPercentile(50), noWaits ? 0 : wait.getValueAtPercentile(99),
        noWaits ? 0 : wait.getMaxValue());
  }
}
