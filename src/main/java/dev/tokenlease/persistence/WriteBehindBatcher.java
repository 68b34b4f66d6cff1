package dev.tokenlease.persistence;

import dev.tokenlease.pool.PoolChange;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gathers pool changes and writes them in batches, one batch in flight at a time. While a batch is
 * being committed the next one gathers (group commit), so under load batches grow and round trips
 * stay few; when idle, a change is written at once (immediate mode) or at the next tick.
 *
 * <p>A failed batch goes back to the head of the queue and is retried with backoff; nothing is
 * dropped. Callers waiting on it are told of the failure. Confined to one event loop.
 */
final class WriteBehindBatcher {
  private static final Logger LOG = LoggerFactory.getLogger(WriteBehindBatcher.class);
  private static final long MAX_BACKOFF_MS = 5_000;

  /** One message's changes and who waits for their commit (null once answered or if nobody). */
  private static final class Entry {
    final List<PoolChange> changes;
    final long seq;
    Promise<Void> ack;

    Entry(List<PoolChange> changes, long seq, Promise<Void> ack) {
      this.changes = changes;
      this.seq = seq;
      this.ack = ack;
    }
  }

  private record Barrier(long seq, Promise<Void> promise) {}

  private final Vertx vertx;
  private final Function<List<PoolChange>, Future<Void>> writer;
  private final Consumer<List<PoolChange>> onCommitted;
  private final PersistenceStatus status;
  private final int maxBatch;
  private final boolean immediate;
  private final ArrayDeque<Entry> pending = new ArrayDeque<>();
  private final ArrayDeque<Barrier> barriers = new ArrayDeque<>();
  private int pendingChanges;
  private long enqueuedSeq;
  private long committedSeq;
  private boolean inFlight;
  private long retryTimer = -1;
  private int consecutiveFailures;
  private boolean closing;

  /**
   * @param onCommitted told of every batch once it is committed, in commit order
   * @param immediate write as soon as nothing is in flight (durable mode); otherwise wait for
   *     {@link #tick()}, a full batch, or a reader
   */
  WriteBehindBatcher(Vertx vertx, Function<List<PoolChange>, Future<Void>> writer,
      Consumer<List<PoolChange>> onCommitted, PersistenceStatus status, int maxBatch, boolean immediate) {
    this.vertx = vertx;
    this.writer = writer;
    this.onCommitted = onCommitted;
    this.status = status;
    this.maxBatch = maxBatch;
    this.immediate = immediate;
  }

  /** Queues changes; {@code ack}, if given, completes when they are committed. */
  void add(List<PoolChange> changes, Promise<Void> ack) {
    pending.add(new Entry(changes, ++enqueuedSeq, ack));
    pendingChanges += changes.size();
    if (immediate || closing || pendingChanges >= maxBatch) {
      flush();
    }
  }

  /** Completes once every change queued so far is committed, so a read that follows sees them. */
  Future<Void> barrier() {
    if (committedSeq == enqueuedSeq) {
      return Future.succeededFuture();
    }
    if (status.failure() != null && retryTimer != -1) {
      return Future.failedFuture(new IllegalStateException(status.failure()));
    }
    Promise<Void> promise = Promise.promise();
    barriers.add(new Barrier(enqueuedSeq, promise));
    flush();
    return promise.future();
  }

  /** The periodic flush of memory mode. */
  void tick() {
    flush();
  }

  boolean idle() {
    return pending.isEmpty() && !inFlight;
  }

  int pendingChanges() {
    return pendingChanges;
  }

  /** From now on every change is written at once, and retries continue until {@link #idle()}. */
  void closing() {
    closing = true;
    flush();
  }

  private void flush() {
    if (inFlight || pending.isEmpty() || retryTimer != -1) {
      return;
    }
    List<Entry> batch = new ArrayList<>();
    List<PoolChange> changes = new ArrayList<>();
    while (!pending.isEmpty() && (batch.isEmpty() || changes.size() + pending.peek().changes.size() <= maxBatch)) {
      Entry entry = pending.poll();
      batch.add(entry);
      changes.addAll(entry.changes);
    }
    pendingChanges -= changes.size();
    inFlight = true;
    writer.apply(changes).onComplete(result -> {
      inFlight = false;
      if (result.succeeded()) {
        committed(batch, changes.size());
        onCommitted.accept(changes);
      } else {
        failed(batch, changes.size(), result.cause());
      }
      if (retryTimer == -1 && (immediate || closing || pendingChanges >= maxBatch || !barriers.isEmpty())) {
        flush();
      }
    });
  }

  private void committed(List<Entry> batch, int changeCount) {
    if (consecutiveFailures > 0) {
      LOG.info("Database writes succeed again after {} failed attempts", consecutiveFailures);
    }
    consecutiveFailures = 0;
    status.healthy();
    status.committed(changeCount);
    committedSeq = batch.get(batch.size() - 1).seq;
    forEachAck(batch, Promise::complete);
    while (!barriers.isEmpty() && barriers.peek().seq <= committedSeq) {
      barriers.poll().promise.complete();
    }
  }

  private void failed(List<Entry> batch, int changeCount, Throwable cause) {
    consecutiveFailures++;
    String reason = describe(cause);
    status.failing(reason);
    long backoff = Math.min(MAX_BACKOFF_MS, 50L << Math.min(consecutiveFailures, 10));
    LOG.error("Writing {} changes failed (attempt {}), retrying in {} ms: {}", changeCount,
        consecutiveFailures, backoff, reason);
    forEachAck(batch, ack -> ack.fail(new IllegalStateException(reason)));
    for (int i = batch.size() - 1; i >= 0; i--) {
      pending.addFirst(batch.get(i));
    }
    pendingChanges += changeCount;
    while (!barriers.isEmpty()) {
      barriers.poll().promise.fail(new IllegalStateException(reason));
    }
    retryTimer = vertx.setTimer(backoff, id -> {
      retryTimer = -1;
      flush();
    });
  }

  private static void forEachAck(List<Entry> batch, Consumer<Promise<Void>> action) {
    for (Entry entry : batch) {
      if (entry.ack != null) {
        action.accept(entry.ack);
        entry.ack = null;
      }
    }
  }

  static String describe(Throwable cause) {
    String message = cause.getMessage();
    return message == null || message.isBlank() ? cause.getClass().getSimpleName() : message;
  }

  void cancelTimers() {
    if (retryTimer != -1) {
      vertx.cancelTimer(retryTimer);
      retryTimer = -1;
    }
  }
}
