package dev.tokenlease.lease.persistence;

import dev.tokenlease.lease.core.PoolChange;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the pool's changes to the database in batches, a few in flight at a time (group commit:
 * while batches are being committed the next one gathers), and keeps the promises that replies
 * depend on. Confined to the pool's event loop; {@link #tick()} drives time.
 *
 * <p>Every batch carries its own sequence number, its predecessor's, and the writer's epoch, checked
 * in the same statement (see {@link BatchStore}): a batch applies only on top of its predecessor, so
 * the database holds batches in the order they were formed. The store sends batches in flight on one
 * connection, where the server runs each after the one before; one that still reaches the database
 * before its predecessor is in writes nothing ({@link Outcome#BEHIND}) and is sent again once the
 * predecessor has its answer.
 * Sequence numbers are never reused: after an undo the next batch names the last batch that may
 * still be in, so an attempt of an undone batch that the database runs late can never apply, nor
 * can one that runs after another instance took over. That makes a batch's fate knowable: once any
 * attempt reaches the database, the answer says whether the batch is in. Outcomes are taken in
 * batch order, so commits are acknowledged and published in the order the database applied them.
 *
 * <p>Durable mode: a caller's reply waits until its batch is committed, at most the ack timeout.
 * Then, if no attempt of the batch can still commit (every attempt was refused or never left), its
 * changes and everything queued after them are undone in the pool and the callers get an error: a
 * refused request changes nothing. If an attempt may have committed (the connection broke with the
 * statement outstanding), the batch is retried until the database says whether it is in; callers
 * still waiting after twice the ack timeout are told the outcome is unknown.
 *
 * <p>Memory mode: replies never wait; batches are written every flush interval and retried until
 * they commit. Either mode commits a (possibly empty) batch at least every quarter of the lag
 * bound, so the database keeps a recent proof that this writer was alive ({@link #sinceConfirmedNanos}).
 */
public final class WriteBehindBatcher {
  private static final Logger LOG = LoggerFactory.getLogger(WriteBehindBatcher.class);
  private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(2);
  private static final long FIRST_BACKOFF_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

  /** How a batch attempt ended, as the database told it. */
  public enum Outcome {
    /** This attempt wrote the batch. */
    APPLIED,
    /** An earlier attempt of the same batch had written it; this one wrote nothing. */
    ALREADY_APPLIED,
    /** Another writer holds the database now; nothing was written. */
    FENCED,
    /** The batch's predecessor was not in the database when this attempt ran; nothing was written. */
    BEHIND
  }

  /** The database side: one statement per batch, predecessor, sequence and epoch checked in it. */
  public interface BatchStore {
    /**
     * Writes one batch, numbered {@code seq}, if the last batch the database holds is {@code prev} and
     * the writer's epoch is {@code epoch}. Fails with {@link NotSentException} when the attempt
     * certainly wrote nothing (no connection, or the server answered with an error); any other
     * failure leaves it in doubt.
     */
    Future<Outcome> write(long epoch, long prev, long seq, long reserveGenerationsUpTo, List<PoolChange> changes);
  }

  /** The pool side, told of what happened to its changes. */
  public interface Listener {
    /** Takes back every pool step from {@code mark} on (durable mode only). */
    void undoTo(long mark);

    /** A batch is in the database; {@code firstUnwrittenMark} is where undoable history must start now, or -1 if nothing is pending. */
    void committed(List<PoolChange> changes, long generationsReservedUpTo, long firstUnwrittenMark);

    /** Another writer took over the database: this one must change nothing from now on. */
    void fencedOut();

    /** The generation limit to reserve with the next batch. */
    long generationsToReserve();

    /** A batch of {@code changes} committed {@code commitNanos} after its attempt was sent (for metrics). */
    default void written(int changes, long commitNanos) {}
  }

  /** The write certainly did not take effect. */
  public static final class NotSentException extends RuntimeException {
    public NotSentException(String message, Throwable cause) {
      super(message, cause, false, false);
    }
  }

  /** The failure given to a caller whose change was undone. */
  public static final class RefusedException extends RuntimeException {
    RefusedException(String message) {
      super(message, null, false, false);
    }
  }

  /** The failure given to a caller when the database could not say in time whether its change is in. */
  public static final class OutcomeUnknownException extends RuntimeException {
    OutcomeUnknownException(String message) {
      super(message, null, false, false);
    }
  }

  /** One mutation's changes, where the pool stood before it, and who waits for its commit. */
  private static final class Entry {
    final List<PoolChange> changes;
    final long mark;
    final long enqueuedNanos;
    final long number;
    Promise<Void> ack;

    Entry(List<PoolChange> changes, long mark, long enqueuedNanos, long number, Promise<Void> ack) {
      this.changes = changes;
      this.mark = mark;
      this.enqueuedNanos = enqueuedNanos;
      this.number = number;
      this.ack = ack;
    }
  }

  /** A batch keeps its content and sequence number across attempts until it is written or undone. */
  private static final class Batch {
    final long prev;
    final long seq;
    final List<Entry> entries;
    final List<PoolChange> changes;
    /** Fixed with the content: an earlier attempt that turns out written must have reserved the same. */
    final long reserve;
    long firstSentNanos = -1;
    boolean outstanding;
    boolean inDoubt;
    /** Whether the attempt outstanding was sent with every batch before this one known written. */
    boolean sentFirstInLine;
    /** Ran before its predecessor was in: sent again once the predecessor's attempt has an answer. */
    boolean behind;
    /** In the database; acknowledged once every batch before it is ({@code -1} while not known). */
    long writtenSentNanos = -1;

    Batch(long prev, long seq, List<Entry> entries, List<PoolChange> changes, long reserve) {
      this.prev = prev;
      this.seq = seq;
      this.entries = entries;
      this.changes = changes;
      this.reserve = reserve;
    }
  }

  private record Barrier(long number, Promise<Void> promise) {}

  private final BatchStore store;
  private final Listener listener;
  private final LongSupplier nanoTime;
  private final boolean durable;
  private final int maxBatch;
  private final int maxInFlight;
  private final long ackTimeoutNanos;
  private final long maxLagNanos;
  private final long flushIntervalNanos;
  private final ArrayDeque<Entry> pending = new ArrayDeque<>();
  private final ArrayDeque<Barrier> barriers = new ArrayDeque<>();
  /** Batches sent and not yet acknowledged, oldest first; each names the one before it as predecessor. */
  private final ArrayDeque<Batch> inFlight = new ArrayDeque<>();
  private long epoch;
  /** The last batch known to be in the database. */
  private long lastWritten;
  /** The next sequence number to give a batch; numbers are never given twice. */
  private long nextSeq;
  private long entryNumbers;
  private int pendingChanges;
  private long lastFlushNanos;
  private long lastConfirmedSendNanos;
  private long nextAttemptNanos;
  private int consecutiveFailures;
  private String failure;
  private boolean fenced;
  private boolean closing;

  /**
   * @param epoch the writer epoch this process claimed
   * @param lastBatch the sequence number of the last batch the database holds
   * @param claimedNanos when the claim that proved this writer alive was sent
   * @param maxInFlight how many batches may be outstanding at once
   */
  public WriteBehindBatcher(BatchStore store, Listener listener, LongSupplier nanoTime, boolean durable,
      int maxBatch, int maxInFlight, long ackTimeoutNanos, long maxLagNanos, long flushIntervalNanos,
      long epoch, long lastBatch, long claimedNanos) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be at least 1: " + maxInFlight);
    }
    this.store = store;
    this.listener = listener;
    this.nanoTime = nanoTime;
    this.durable = durable;
    this.maxBatch = maxBatch;
    this.maxInFlight = maxInFlight;
    this.ackTimeoutNanos = ackTimeoutNanos;
    this.maxLagNanos = maxLagNanos;
    this.flushIntervalNanos = flushIntervalNanos;
    this.epoch = epoch;
    this.lastWritten = lastBatch;
    this.nextSeq = lastBatch + 1;
    this.lastConfirmedSendNanos = claimedNanos;
    this.lastFlushNanos = claimedNanos;
  }

  /**
   * Queues one mutation's changes.
   *
   * @param mark the pool's undo mark from before the mutation
   * @param ack completed once the changes are committed (durable mode), or null if nobody waits
   */
  public void add(List<PoolChange> changes, long mark, Promise<Void> ack) {
    pending.add(new Entry(changes, mark, nanoTime.getAsLong(), ++entryNumbers, ack));
    pendingChanges += changes.size();
    if (durable || closing || pendingChanges >= maxBatch) {
      pump();
    }
  }

  /** Completes once every change queued so far is committed (or undone), so a read that follows sees them. */
  public Future<Void> barrier() {
    if (oldestEntry() == null) {
      return Future.succeededFuture();
    }
    if (failure != null || fenced) {
      return Future.failedFuture(new RefusedException(refusal()));
    }
    Promise<Void> promise = Promise.promise();
    barriers.add(new Barrier(entryNumbers, promise));
    pump();
    return promise.future();
  }

  /** Called often (every few milliseconds) on the pool's event loop: deadlines, retries, flushes. */
  public void tick() {
    if (fenced) {
      return;
    }
    long now = nanoTime.getAsLong();
    if (durable) {
      enforceDeadlines(now);
    }
    pump();
  }

  /** From now on every change is written at once. */
  public void closing() {
    closing = true;
    pump();
  }

  public boolean idle() {
    return pending.isEmpty() && inFlight.isEmpty();
  }

  public int pendingChanges() {
    int changes = pendingChanges;
    for (Batch batch : inFlight) {
      changes += batch.changes.size();
    }
    return changes;
  }

  /** How long the oldest change not yet committed has waited; 0 if none. */
  public long oldestUnwrittenNanos() {
    Entry oldest = oldestEntry();
    return oldest == null ? 0 : nanoTime.getAsLong() - oldest.enqueuedNanos;
  }

  /** How long ago the newest write that the database confirmed was sent. */
  public long sinceConfirmedNanos() {
    return nanoTime.getAsLong() - lastConfirmedSendNanos;
  }

  /** Why the last write attempt failed, or null while writes succeed. */
  public String failure() {
    return failure;
  }

  /** Whether a batch that may have been written waits for the database to say so. */
  public boolean inDoubt() {
    for (Batch batch : inFlight) {
      if (batch.inDoubt) {
        return true;
      }
    }
    return false;
  }

  public boolean fenced() {
    return fenced;
  }

  /** Why new changes cannot be taken now, or null if they can. */
  public String refusal() {
    if (fenced) {
      return "Another service instance has taken over the database; this one changes nothing.";
    }
    // Memory mode acknowledges before writing: only the lag bound below limits what a crash loses.
    if (durable && inDoubt()) {
      return "The database has not confirmed recent changes yet; try again shortly.";
    }
    if (durable && failure != null) {
      return "The database is not accepting writes (" + failure + "); try again shortly.";
    }
    long lagMillis = TimeUnit.NANOSECONDS.toMillis(Math.max(oldestUnwrittenNanos(), durable ? 0 : sinceConfirmedNanos()));
    if (lagMillis >= TimeUnit.NANOSECONDS.toMillis(maxLagNanos)) {
      return "Writes to the database are " + lagMillis + " ms behind; try again shortly.";
    }
    return null;
  }

  /**
   * Sends what may go now: batches waiting for another attempt, in order, and a new batch if a slot
   * is free and it is time. A batch is only sent while the one before it may still commit (it is
   * outstanding or written), since it applies on top of it; after a failure, nothing new is formed
   * until the oldest batch is written again.
   */
  private void pump() {
    if (fenced) {
      return;
    }
    long now = nanoTime.getAsLong();
    Batch before = null;
    for (Batch batch : inFlight) {
      if (!batch.outstanding && !batch.behind && batch.writtenSentNanos == -1 && now - nextAttemptNanos >= 0
          && (before == null || before.outstanding || before.writtenSentNanos != -1)) {
        send(batch, now);
      }
      before = batch;
    }
    if (inFlight.size() >= maxInFlight) {
      return;
    }
    Batch tail = inFlight.peekLast();
    if (tail != null && (consecutiveFailures > 0 || !(tail.outstanding || tail.writtenSentNanos != -1))) {
      return;
    }
    boolean due = durable || closing || !barriers.isEmpty() || pendingChanges >= maxBatch
        || now - lastFlushNanos >= flushIntervalNanos;
    // An empty batch only as proof of life, and only when nothing in flight gives that proof.
    boolean proofDue = tail == null && now - lastConfirmedSendNanos >= maxLagNanos / 4;
    if ((pending.isEmpty() || !due) && !proofDue) {
      return;
    }
    List<Entry> entries = new ArrayList<>();
    List<PoolChange> changes = new ArrayList<>();
    while (!pending.isEmpty() && (entries.isEmpty() || changes.size() + pending.peek().changes.size() <= maxBatch)) {
      Entry entry = pending.poll();
      entries.add(entry);
      changes.addAll(entry.changes);
    }
    pendingChanges -= changes.size();
    lastFlushNanos = now;
    Batch batch = new Batch(tail == null ? lastWritten : tail.seq, nextSeq++, entries, changes,
        listener.generationsToReserve());
    inFlight.add(batch);
    send(batch, now);
  }

  private void send(Batch batch, long now) {
    batch.outstanding = true;
    batch.sentFirstInLine = inFlight.peekFirst() == batch;
    if (batch.firstSentNanos == -1) {
      batch.firstSentNanos = now;
    }
    store.write(epoch, batch.prev, batch.seq, batch.reserve, batch.changes).onComplete(result -> {
      batch.outstanding = false;
      if (fenced || !inFlight.contains(batch)) {
        return; // undone meanwhile; its predecessor never commits, so it cannot have effect either
      }
      Batch successor = successorOf(batch);
      if (successor != null) {
        successor.behind = false;
      }
      if (result.succeeded()) {
        switch (result.result()) {
          case APPLIED -> batch.writtenSentNanos = now;
          // Written by an earlier attempt, sent no earlier than the first one.
          case ALREADY_APPLIED -> batch.writtenSentNanos = batch.firstSentNanos;
          case FENCED -> fencedOut();
          case BEHIND -> behind(batch);
        }
      } else {
        failed(batch, result.cause());
      }
      while (!fenced && !inFlight.isEmpty() && inFlight.peekFirst().writtenSentNanos != -1) {
        written(inFlight.poll());
      }
      pump();
    });
  }

  /**
   * The attempt ran while its predecessor was not in (the predecessor failed, or an attempt of it on a
   * connection given up still runs): it is sent again once the predecessor may commit, and not before
   * the predecessor's attempt outstanding now has its answer. If every batch before it was already
   * written when it was sent, the database's sequence is not where this writer left it: it stops.
   */
  private void behind(Batch batch) {
    if (!batch.sentFirstInLine) {
      Batch predecessor = predecessorOf(batch);
      batch.behind = predecessor != null && predecessor.outstanding;
    } else {
      LOG.error("Batch {} found the database's last batch other than {}, which this writer wrote last; it stops changing anything",
          batch.seq, batch.prev);
      fencedOut();
    }
  }

  private Batch predecessorOf(Batch batch) {
    Batch before = null;
    for (Batch next : inFlight) {
      if (next == batch) {
        return before;
      }
      before = next;
    }
    return null;
  }

  private Batch successorOf(Batch batch) {
    boolean found = false;
    for (Batch next : inFlight) {
      if (found) {
        return next;
      }
      found = next == batch;
    }
    return null;
  }

  private void written(Batch batch) {
    if (consecutiveFailures > 0) {
      LOG.info("Database writes succeed again after {} failed attempts", consecutiveFailures);
    }
    consecutiveFailures = 0;
    failure = null;
    lastWritten = batch.seq;
    lastConfirmedSendNanos = Math.max(lastConfirmedSendNanos, batch.writtenSentNanos);
    for (Entry entry : batch.entries) {
      if (entry.ack != null) {
        entry.ack.complete();
        entry.ack = null;
      }
    }
    listener.written(batch.changes.size(), nanoTime.getAsLong() - batch.writtenSentNanos);
    Entry firstUnwritten = oldestEntry();
    listener.committed(batch.changes, batch.reserve, firstUnwritten == null ? -1 : firstUnwritten.mark);
    releaseBarriers();
  }

  private void failed(Batch batch, Throwable cause) {
    boolean notSent = cause instanceof NotSentException;
    batch.inDoubt |= !notSent;
    consecutiveFailures++;
    failure = describe(notSent && cause.getCause() != null ? cause.getCause() : cause);
    long backoff = Math.min(MAX_BACKOFF_NANOS, FIRST_BACKOFF_NANOS << Math.min(consecutiveFailures - 1, 10));
    nextAttemptNanos = nanoTime.getAsLong() + backoff;
    LOG.error("Writing batch {} ({} changes) failed (attempt {}{}), retrying in {} ms: {}", batch.seq,
        batch.changes.size(), consecutiveFailures, batch.inDoubt ? ", may have been written" : "",
        TimeUnit.NANOSECONDS.toMillis(backoff), failure);
    while (!barriers.isEmpty()) {
      barriers.poll().promise.fail(new RefusedException(refusal()));
    }
  }

  /**
   * Durable mode: a change whose caller has waited the ack timeout is undone and refused if it
   * cannot be in the database; if it may be, the batch keeps being retried and, past twice the
   * timeout, its callers are told the outcome is unknown.
   */
  private void enforceDeadlines(long now) {
    int index = 0;
    boolean unknownDue = false;
    for (Batch batch : inFlight) {
      Entry first = firstWaiting(batch.entries.iterator());
      if (first != null && now - first.enqueuedNanos >= ackTimeoutNanos) {
        // Undo from the first batch that, with every batch after it, certainly is not in.
        if (certainlyNotWrittenFrom(index)) {
          undoFrom(first);
          return;
        }
        unknownDue |= now - first.enqueuedNanos >= 2 * ackTimeoutNanos;
      }
      index++;
    }
    if (unknownDue) {
      outcomeUnknown(now);
    }
    Entry waiting = firstWaiting(pending.iterator());
    if (waiting != null && now - waiting.enqueuedNanos >= ackTimeoutNanos) {
      undoFrom(waiting);
    }
  }

  /** Whether no attempt of the batch at {@code index} or of any after it can still be in the database. */
  private boolean certainlyNotWrittenFrom(int index) {
    int i = 0;
    for (Batch batch : inFlight) {
      if (i++ >= index && (batch.outstanding || batch.inDoubt || batch.writtenSentNanos != -1)) {
        return false;
      }
    }
    return true;
  }

  /** Callers waiting twice the ack timeout on a batch that may be in are told the outcome is not known yet. */
  private void outcomeUnknown(long now) {
    for (Batch batch : inFlight) {
      for (Entry entry : batch.entries) {
        if (entry.ack != null && now - entry.enqueuedNanos >= 2 * ackTimeoutNanos) {
          entry.ack.fail(new OutcomeUnknownException(
              "The database did not confirm the change in time; whether it took effect is not known yet."));
          entry.ack = null;
        }
      }
    }
  }

  private static Entry firstWaiting(Iterator<Entry> entries) {
    while (entries.hasNext()) {
      Entry entry = entries.next();
      if (entry.ack != null) {
        return entry;
      }
    }
    return null;
  }

  /**
   * Takes back {@code from} and everything queued after it (later changes were made on top of it),
   * in the pool first, then refuses whoever waits for them. None of it can reach the database: the
   * batch holding {@code from}, if it was sent, was refused by every attempt.
   */
  private void undoFrom(Entry from) {
    String reason = "The database did not confirm the change within "
        + TimeUnit.NANOSECONDS.toMillis(ackTimeoutNanos) + " ms" + (failure == null ? "" : " (" + failure + ")")
        + "; nothing was changed. Try again shortly.";
    Batch holding = null;
    for (Batch batch : inFlight) {
      if (batch.entries.contains(from)) {
        holding = batch;
        break;
      }
    }
    if (holding != null) {
      // Neither it nor any batch after it reached the database: what they held before the change
      // stays to be written, in new batches whose numbers no attempt of these can ever match.
      while (true) {
        Batch last = inFlight.pollLast();
        for (int i = last.entries.size() - 1; i >= 0; i--) {
          pending.addFirst(last.entries.get(i));
        }
        if (last == holding) {
          break;
        }
      }
    }
    List<Entry> undone = new ArrayList<>();
    boolean found = false;
    for (Iterator<Entry> it = pending.iterator(); it.hasNext(); ) {
      Entry entry = it.next();
      found |= entry == from;
      if (found) {
        undone.add(entry);
        it.remove();
      }
    }
    listener.undoTo(from.mark);
    for (Entry entry : undone) {
      if (entry.ack != null) {
        entry.ack.fail(new RefusedException(reason));
        entry.ack = null;
      }
    }
    pendingChanges = 0;
    for (Entry entry : pending) {
      pendingChanges += entry.changes.size();
    }
    LOG.warn("Undid {} unconfirmed changes of {} requests: {}", undone.stream().mapToInt(e -> e.changes.size()).sum(),
        undone.size(), reason);
    releaseBarriers();
  }

  private void fencedOut() {
    fenced = true;
    LOG.error("Another service instance has taken over the database; this one stops changing anything");
    List<Entry> undone = new ArrayList<>();
    for (Batch batch : inFlight) {
      undone.addAll(batch.entries);
    }
    undone.addAll(pending);
    inFlight.clear();
    pending.clear();
    pendingChanges = 0;
    if (!undone.isEmpty()) {
      listener.undoTo(undone.get(0).mark);
    }
    for (Entry entry : undone) {
      if (entry.ack != null) {
        entry.ack.fail(new RefusedException(refusal()));
        entry.ack = null;
      }
    }
    while (!barriers.isEmpty()) {
      barriers.poll().promise.fail(new RefusedException(refusal()));
    }
    listener.fencedOut();
  }

  private Entry oldestEntry() {
    for (Batch batch : inFlight) {
      if (!batch.entries.isEmpty()) {
        return batch.entries.get(0);
      }
    }
    return pending.peek();
  }

  private void releaseBarriers() {
    Entry oldest = oldestEntry();
    long firstUnwritten = oldest == null ? Long.MAX_VALUE : oldest.number;
    while (!barriers.isEmpty() && barriers.peek().number < firstUnwritten) {
      barriers.poll().promise.complete();
    }
  }

  public static String describe(Throwable cause) {
    String message = cause.getMessage();
    return message == null || message.isBlank() ? cause.getClass().getSimpleName() : message;
  }
}
