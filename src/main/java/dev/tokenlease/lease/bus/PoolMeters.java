package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolStats;
import dev.tokenlease.lease.core.TokenPool;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One pool's meters, labelled with the pool's name only (bounded by {@code TOKENS_MAX_POOLS}; never a
 * user or token id). The hold-time histogram records committed changes; occupancy, refusals and the
 * lease counters are the pool's own figures and its {@link PoolStats}, copied every second on the
 * owner's event loop (the scrape runs elsewhere, so it reads those copies, never the pool itself).
 */
final class PoolMeters {
  private static final String LEASES = "Leases granted and ended, by how, from committed changes";

  private final MeterRegistry registry;
  private final List<Meter> meters = new ArrayList<>();
  private final Timer hold;
  private volatile long granted;
  /** Leases ended so far, by {@link EndReason#ordinal()}; replaced whole at each refresh. */
  private volatile long[] ended = new long[EndReason.values().length];
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
    meters.add(FunctionCounter.builder("tokens.pool.leases", this, m -> m.granted).tag("pool", pool)
        .tag("event", "granted").description(LEASES).register(registry));
    for (EndReason reason : EndReason.values()) {
      meters.add(FunctionCounter.builder("tokens.pool.leases", this, m -> m.ended[reason.ordinal()]).tag("pool", pool)
          .tag("event", reason.wireName()).description(LEASES).register(registry));
    }
    hold = Timer.builder("tokens.pool.lease.hold").tag("pool", pool)
        .description("How long ended leases were held").register(registry);
    meters.add(hold);
  }

  /** Records a committed change's hold time if it ended a lease (any thread may scrape meanwhile). */
  void committed(PoolChange change) {
    if (change.kind() == PoolChange.Kind.ENDED) {
      hold.record(Math.max(0, change.endedAtMillis() - change.startedAtMillis()), TimeUnit.MILLISECONDS);
    }
  }

  /** Takes the pool's figures now; on the owner's event loop. */
  void refresh(TokenPool pool, PoolStats stats) {
    long[] counts = new long[EndReason.values().length];
    for (EndReason reason : EndReason.values()) {
      counts[reason.ordinal()] = stats.ended(reason);
    }
    ended = counts;
    granted = stats.granted();
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
