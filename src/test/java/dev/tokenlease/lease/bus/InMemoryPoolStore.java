package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.lease.persistence.PoolStore;
import dev.tokenlease.lease.persistence.WriteBehindBatcher;
import dev.tokenlease.lease.persistence.WriteBehindBatcher.Outcome;
import dev.tokenlease.platform.config.AckMode;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The pool's store in memory, with the database's fence: a batch is taken once, in sequence order,
 * and only from the writer epoch it handed out. How it answers each batch attempt is the test's
 * choice: at once, held until the test commits it, refused (certainly not written) or written with
 * its answer lost (in doubt). Answers given at once come back inside the call, as early as a real
 * store could answer, so the order of events a test arranges is the order the pool sees.
 *
 * <p>The pool calls it on its event loop; tests read it from theirs, hence the locking.
 */
final class InMemoryPoolStore implements PoolStore {
  /** How the store answers a batch attempt. */
  enum Answer {
    /** Written, and says so. */
    COMMIT,
    /** Left unanswered until the test calls {@link Write#commit()}. */
    HOLD,
    /** Refused by the server: certainly not written. */
    REFUSE,
    /** Written, but the connection broke before the answer came: the pool cannot know. */
    LOSE_ANSWER
  }

  /** One batch attempt as the pool sent it. */
  final class Write {
    final long epoch;
    final long prev;
    final long seq;
    final List<PoolChange> changes;
    private final Promise<Outcome> outcome = Promise.promise();
    private final Context poolContext = Vertx.currentContext();

    private Write(long epoch, long prev, long seq, List<PoolChange> changes) {
      this.epoch = epoch;
      this.prev = prev;
      this.seq = seq;
      this.changes = List.copyOf(changes);
    }

    /** Writes a held attempt and answers it, on the pool's event loop as a real answer would come. */
    void commit() {
      poolContext.runOnContext(v -> outcome.complete(apply(this)));
    }

    /** Refuses a held attempt, certainly not written, on the pool's event loop. */
    void refuse() {
      poolContext.runOnContext(v -> outcome.fail(refusal()));
    }
  }

  private final List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
  private final List<Write> writes = new ArrayList<>();
  private final List<PoolChange> committed = new ArrayList<>();
  private final Deque<Answer> nextAnswers = new ArrayDeque<>();
  private final List<Waiter> writeWaiters = new ArrayList<>();
  private Answer answer = Answer.COMMIT;
  private boolean instanceLockHeld = true;
  private long epoch = 6;
  private long lastBatch = 40;
  private boolean stoppedCleanly;
  private PoolSettings defaultSettings;

  /** Sets how every attempt from now on is answered. */
  synchronized void answerAll(Answer answer) {
    this.answer = answer;
  }

  /** Answers the next attempt so, before going back to the answer for all. */
  synchronized void answerNext(Answer answer) {
    nextAnswers.add(answer);
  }

  synchronized void loseInstanceLock() {
    instanceLockHeld = false;
  }

  private record Waiter(Context context, Promise<Write> promise) {}

  /** Completes, on the calling test's context, when the pool sends its next batch attempt. */
  synchronized Future<Write> nextWrite() {
    Waiter waiter = new Waiter(Vertx.currentContext(), Promise.promise());
    writeWaiters.add(waiter);
    return waiter.promise().future();
  }

  /** Every attempt so far, in the order sent. */
  synchronized List<Write> writes() {
    return List.copyOf(writes);
  }

  /** Every change the store took, in commit order. */
  synchronized List<PoolChange> committed() {
    return List.copyOf(committed);
  }

  /** Writes and answers every attempt still held. */
  synchronized void commitHeld() {
    for (Write write : writes) {
      if (!write.outcome.future().isComplete()) {
        write.commit();
      }
    }
  }

  synchronized boolean stoppedCleanly() {
    return stoppedCleanly;
  }

  @Override
  public synchronized Future<Outcome> write(long epoch, long prev, long seq, long reserveGenerationsUpTo,
      List<PoolChange> changes) {
    Write write = new Write(epoch, prev, seq, changes);
    writes.add(write);
    for (Waiter waiter : writeWaiters) {
      waiter.context().runOnContext(v -> waiter.promise().complete(write));
    }
    writeWaiters.clear();
    Answer now = nextAnswers.isEmpty() ? answer : nextAnswers.poll();
    switch (now) {
      case COMMIT -> write.outcome.complete(apply(write));
      case HOLD -> { }
      case REFUSE -> write.outcome.fail(refusal());
      case LOSE_ANSWER -> {
        apply(write);
        write.outcome.fail(new IllegalStateException("Connection reset"));
      }
    }
    return write.outcome.future();
  }

  private static WriteBehindBatcher.NotSentException refusal() {
    return new WriteBehindBatcher.NotSentException("refused by the database",
        new IllegalStateException("connection refused"));
  }

  private synchronized Outcome apply(Write write) {
    if (write.epoch != epoch) {
      return Outcome.FENCED;
    }
    if (write.seq <= lastBatch) {
      return Outcome.ALREADY_APPLIED;
    }
    if (write.prev != lastBatch) {
      return Outcome.BEHIND;
    }
    lastBatch = write.seq;
    committed.addAll(write.changes);
    return Outcome.APPLIED;
  }

  @Override
  public Future<Void> takeInstanceLock() {
    return Future.succeededFuture();
  }

  @Override
  public synchronized boolean instanceLockHeld() {
    return instanceLockHeld;
  }

  @Override
  public synchronized Future<Void> ensureDefaultPool(PoolSettings settings, int poolSize) {
    defaultSettings = settings;
    while (tokens.size() < poolSize) {
      tokens.add(PoolSnapshot.StoredToken.fresh(UUID.randomUUID(), tokens.size() + 1));
    }
    return Future.succeededFuture();
  }

  /** Pools other than default are not kept here: the verticle's test needs only the one. */
  @Override
  public Future<StoredPool> createPool(long epoch, PoolSettings settings, int size) {
    return Future.failedFuture(new UnsupportedOperationException("only the pool default is kept in memory"));
  }

  @Override
  public Future<List<PoolSnapshot.StoredToken>> updatePool(long epoch, int poolId, PoolSettings settings, int size,
      int grow) {
    return Future.failedFuture(new UnsupportedOperationException("only the pool default is kept in memory"));
  }

  @Override
  public Future<StoredPool> findPool(String name) {
    return Future.succeededFuture(null);
  }

  @Override
  public Future<Void> deletePool(long epoch, int poolId) {
    return Future.failedFuture(new UnsupportedOperationException("only the pool default is kept in memory"));
  }

  @Override
  public synchronized Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead) {
    epoch++;
    return Future.succeededFuture(new WriterClaim(epoch, lastBatch, 0, reserveAhead, 0));
  }

  @Override
  public synchronized Future<List<StoredPool>> loadPools() {
    return Future.succeededFuture(List.of(new StoredPool(1, defaultSettings, Instant.EPOCH,
        new PoolSnapshot(List.copyOf(tokens), List.of(), 0, PoolChange.NO_TIME))));
  }

  @Override
  public synchronized Future<History.TokenUsageList> tokenUsages(UUID tokenId, String pool) {
    return Future.succeededFuture(new History.TokenUsageList(tokenId,
        usages().stream().filter(u -> u.tokenId().equals(tokenId)).toList()));
  }

  @Override
  public synchronized Future<History.UserUsagePage> userUsages(History.UserUsages query) {
    return Future.succeededFuture(new History.UserUsagePage(query.userId(),
        usages().stream().filter(u -> u.userId().equals(query.userId())).toList(), null));
  }

  /** The usages as the committed changes leave them: the last change of each generation. */
  private List<History.Usage> usages() {
    Map<Long, PoolChange> last = new LinkedHashMap<>();
    committed.forEach(change -> last.put(change.generation(), change));
    return last.values().stream().map(c -> new History.Usage(c.generation(), c.tokenId(), c.userId(),
        Instant.ofEpochMilli(c.startedAtMillis()),
        c.endedAtMillis() == PoolChange.NO_TIME ? null : Instant.ofEpochMilli(c.endedAtMillis()), c.endReason(),
        c.pool())).toList();
  }

  @Override
  public synchronized Future<Void> stopRun(long epoch, long lastGeneration) {
    stoppedCleanly = epoch == this.epoch;
    return Future.succeededFuture();
  }

  @Override
  public Future<Void> close() {
    return Future.succeededFuture();
  }
}
