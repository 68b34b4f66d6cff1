package dev.tokenlease.lease.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("PoolStats")
class PoolStatsTest {
  private static PoolChange granted(long generation) {
    return new PoolChange(PoolChange.Kind.GRANTED, generation, UUID.randomUUID(), UUID.randomUUID(), 0, 1000,
        PoolChange.NO_TIME, null, 0, PoolChange.NO_TIME, 1, null, 0, null, 0);
  }

  private static PoolChange ended(long generation, EndReason reason, long heldMillis) {
    return new PoolChange(PoolChange.Kind.ENDED, generation, UUID.randomUUID(), UUID.randomUUID(), 10_000,
        20_000, 10_000 + heldMillis, reason, 10_000, 10_000 + heldMillis, 1, null, 0, null, 0);
  }

  @Test
  @DisplayName("before anything is committed, every figure is 0")
  void empty() {
    assertThat(new PoolStats().report()).isEqualTo(new PoolStats.Report(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
  }

  @Test
  @DisplayName("counts grants and each way a lease ends, not renewals")
  void counts() {
    PoolStats stats = new PoolStats();
    PoolChange renewed = new PoolChange(PoolChange.Kind.RENEWED, 1, UUID.randomUUID(), UUID.randomUUID(), 0, 2000,
        PoolChange.NO_TIME, null, 0, PoolChange.NO_TIME, 1, null, 0, null, 0);
    stats.committed(List.of(granted(1), granted(2), granted(3), renewed));
    stats.committed(List.of(ended(1, EndReason.RELEASED, 5), ended(2, EndReason.EXPIRED, 5),
        ended(3, EndReason.EVICTED, 5), ended(4, EndReason.CLEARED, 5), ended(5, EndReason.CLEARED, 5)));
    PoolStats.Report report = stats.report();
    assertThat(report.granted()).isEqualTo(3);
    assertThat(report.released()).isEqualTo(1);
    assertThat(report.expired()).isEqualTo(1);
    assertThat(report.evicted()).isEqualTo(1);
    assertThat(report.cleared()).isEqualTo(2);
  }

  @Test
  @DisplayName("hold-time percentiles come from the ended leases' start and end")
  void holdTimes() {
    PoolStats stats = new PoolStats();
    List<PoolChange> endings = new ArrayList<>();
    for (int held = 1; held <= 100; held++) {
      endings.add(ended(held, EndReason.RELEASED, held * 10L));
    }
    stats.committed(endings);
    PoolStats.Report report = stats.report();
    assertThat(report.holdP50()).isBetween(499L, 501L);
    assertThat(report.holdP90()).isBetween(899L, 901L);
    assertThat(report.holdP99()).isBetween(989L, 991L);
    assertThat(report.holdMax()).isBetween(999L, 1001L);
  }
}
