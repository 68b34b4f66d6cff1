package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.TokenPool;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One pool's meters, labelled with the pool's name only (bounded by {@code TOKENS_MAX_POOLS}; never a
 * user or token id). Counters of leases and the hold-time histogram count committed changes, as the
 * stats endpoint does; occupancy and refusals are read from figures the owner refreshes every second
 * on its event loop (the scrape runs elsewhere, so it reads those, never the pool itself).
 */
final class PoolMeters {
  private final MeterRegistry registry;
  private final List<Meter> meters = new ArrayList<>();
  private final Counter granted;
  private final Map<EndReason, Counter> ended = new EnumMap<>(EndReason.class);
  private final Timer hold;
  private volatile int size;
  private volatile int active;
  private volatile int available;
  private volatile int waiting;
  private volatile long rejected;
  private volatile long timedOut;

  PoolMeters(MeterRegistry registry, String pool) {
    this.registry = registry;
    meters.add(Gauge.builder("tokens.pool.size", this, m -> m.size).tag("pool", pool)
        .description("Tokens in the pool").register(registry));
    meters.add(Gauge.builder("tokens.pool.active", this, m -> m.active).tag("pool", pool)
        .description("Tokens on lease").register(registry));
    meters.add(Gauge.builder("tokens.pool.available", this, m -> m.available).tag("pool", pool)
        .description("Tokens free").register(registry));
    meters.add(Gauge.builder("tokens.pool.waiting", this, m -> m.waiting).tag("pool", pool)
        .description("Activations waiting for a token").register(registry));
    meters.add(FunctionCounter.builder("tokens.pool.activations.rejected", this, m -> m.rejected).tag("pool", pool)
        .description("Activations refused at once because the pool was full").register(registry));
    meters.add(FunctionCounter.builder("tokens.pool.waits.timed.out", this, m -> m.timedOut).tag("pool", pool)
        .description("Waits for a token that ran out").register(registry));
    granted = Counter.builder("tokens.pool.leases").tag("pool", pool).tag("event", "granted")
        .description("Leases granted and ended, by how, from committed changes").register(registry);
    meters.add(granted);
    for (EndReason reason : EndReason.values()) {
      Counter counter = Counter.builder("tokens.pool.leases").tag("pool", pool).tag("event", reason.wireName())
          .description("Leases granted and ended, by how, from committed changes").register(registry);
      ended.put(reason, counter);
      meters.add(counter);
    }
    hold = Timer.builder("tokens.pool.lease.hold").tag("pool", pool)
        .description("How long ended leases were held").register(registry);
    meters.add(hold);
  }

  /** Counts a committed change (any thread may scrape meanwhile). */
  void committed(PoolChange change) {
    switch (change.kind()) {
      case GRANTED -> granted.increment();
      case RENEWED -> { }
      case ENDED -> {
        ended.get(change.endReason()).increment();
        hold.record(Math.max(0, change.endedAtMillis() - change.startedAtMillis()), TimeUnit.MILLISECONDS);
      }
    }
  }

  /** Takes the pool's figures now; on the owner's event loop. */
  void refresh(TokenPool pool) {
    size = pool.size();
    active = pool.activeCount();
    available = pool.availableCount();
    waiting = pool.waiterCount();
    rejected = pool.rejectedCount();
    timedOut = pool.timedOutCount();
  }

  /** The pool is gone: so are its series. */
  void remove() {
    meters.forEach(registry::remove);
  }
}
