package dev.tokenlease.lease.core;

import java.time.Clock;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongSupplier;

/**
 * The pools one owner serves, and what they share: the clocks, the fencing numbers (one sequence
 * for all pools, so a generation names one lease of the whole service), the undo history and the
 * changes not yet written (so one write-behind batch can hold changes of several pools, and taking
 * one back takes back all that followed it), the bound on waiting activations, and the outcomes of
 * waits not yet told to their callers. Plain Java, single-threaded like its pools.
 */
public final class PoolGroup {
  final Clock clock;
  final LongSupplier nanoTime;
  final UndoLog undo;
  final List<PoolChange> changes = new ArrayList<>();
  final List<WaitOutcome> outcomes = new ArrayList<>();
  /** Pools with activations waiting: the ones a tick visits for waits that ran out. */
  final Set<TokenPool> waiting = new LinkedHashSet<>();
  private final TreeMap<String, TokenPool> pools = new TreeMap<>();
  private final int maxWaiters;
  int waiters;
  long lastGeneration;
  long generationLimit = Long.MAX_VALUE;
  final long blockedUntilMillis;
  long blockedUntilNanos;
  boolean blocked;

  /**
   * @param nanoTime a monotonic clock, as {@link System#nanoTime()}
   * @param undoable keep what {@link #undoTo(long)} needs (costs a few small objects per step)
   * @param lastGeneration no generation at or below it is handed out
   * @param blockedUntilMillis epoch millis before which no token is granted, or {@link PoolChange#NO_TIME}
   * @param maxWaiters the most activations waiting at once, over all pools
   */
  public PoolGroup(Clock clock, LongSupplier nanoTime, boolean undoable, long lastGeneration, long blockedUntilMillis,
      int maxWaiters) {
    this.clock = clock;
    this.nanoTime = nanoTime;
    this.undo = undoable ? new UndoLog() : null;
    this.lastGeneration = lastGeneration;
    this.maxWaiters = maxWaiters;
    this.blockedUntilMillis = blockedUntilMillis;
    long nowMillis = clock.millis();
    blocked = blockedUntilMillis != PoolChange.NO_TIME && blockedUntilMillis > nowMillis;
    if (blocked) {
      blockedUntilNanos = nanoTime.getAsLong() + (blockedUntilMillis - nowMillis) * 1_000_000L;
    }
  }

  /**
   * Adds a pool rebuilt from its snapshot (see {@link TokenPool}); its changes from the rebuild
   * (leases that ran out meanwhile) are among the group's changes.
   */
  public TokenPool add(PoolSettings settings, PoolSnapshot snapshot) {
    if (pools.containsKey(settings.name())) {
      throw new IllegalArgumentException("pool " + settings.name() + " exists");
    }
    TokenPool pool = new TokenPool(this, settings, snapshot);
    pools.put(settings.name(), pool);
    return pool;
  }

  /** The pool of that name, or null. */
  public TokenPool get(String name) {
    return pools.get(name);
  }

  /** Every pool, by name. */
  public Collection<TokenPool> pools() {
    return Collections.unmodifiableCollection(pools.values());
  }

  public int poolCount() {
    return pools.size();
  }

  /**
   * Takes a pool out of the group, which must have no lease open: its waiting activations are
   * refused with {@code refusal}'s answer. Not undoable: the owner removes a pool only once the
   * database no longer has it.
   */
  public void remove(TokenPool pool, dev.tokenlease.platform.ApiException refusal) {
    if (pool.activeCount() > 0) {
      throw new IllegalStateException("pool " + pool.name() + " still has leases");
    }
    pool.refuseWaiters(refusal);
    pools.remove(pool.name());
  }

  /** Retires the leases of every pool whose time has come, and ends the waits that ran out. */
  public void expireDue() {
    for (TokenPool pool : pools.values()) {
      pool.expireDue();
    }
  }

  /** Ends the waits that ran out, in the pools that have any; cheap when nobody waits. */
  public void expireWaits() {
    if (waiting.isEmpty()) {
      return;
    }
    for (TokenPool pool : new ArrayList<>(waiting)) {
      pool.expireDue();
    }
  }

  /** Grants free tokens to the waiting activations of every pool (see {@link TokenPool#serveWaiters()}). */
  public void serveWaiters() {
    if (waiting.isEmpty()) {
      return;
    }
    for (TokenPool pool : new ArrayList<>(waiting)) {
      pool.serveWaiters();
    }
  }

  /** Whether another activation may start waiting. */
  boolean mayWait() {
    return waiters < maxWaiters;
  }

  public int waiterCount() {
    return waiters;
  }

  /** Changes recorded since the last call, in the order they happened, of every pool. */
  public List<PoolChange> drainChanges() {
    if (changes.isEmpty()) {
      return List.of();
    }
    List<PoolChange> out = List.copyOf(changes);
    changes.clear();
    return out;
  }

  /** Waits that ended since the last call: granted (their grant is among the changes) or refused. */
  public List<WaitOutcome> drainOutcomes() {
    if (outcomes.isEmpty()) {
      return List.of();
    }
    List<WaitOutcome> out = List.copyOf(outcomes);
    outcomes.clear();
    return out;
  }

  public long lastGeneration() {
    return lastGeneration;
  }

  /**
   * Activations refuse (503) rather than hand out a generation above {@code upTo}: the owner raises
   * the limit once the database holds it, so a number is never reused after a crash.
   */
  public void limitGenerations(long upTo) {
    generationLimit = upTo;
  }

  /** Where the undo history stands now; pass it to {@link #undoTo(long)} to take back what follows. */
  public long undoMark() {
    return undoable().mark();
  }

  /**
   * Puts every pool back exactly as it was at {@code mark}: leases, queues, counters. Changes not
   * yet drained are dropped; generations handed out since stay used. Waits are not put back: the
   * owner refuses the ones whose grant is taken back.
   */
  public void undoTo(long mark) {
    undoable().undoTo(mark);
    changes.clear();
  }

  /** The steps before {@code mark} are written: they will never be undone. */
  public void forgetBefore(long mark) {
    undoable().forgetBefore(mark);
  }

  private UndoLog undoable() {
    if (undo == null) {
      throw new IllegalStateException("this pool was not made undoable");
    }
    return undo;
  }
}
