package dev.tokenlease.lease.persistence;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.persistence.WriteBehindBatcher.Outcome;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/**
 * The batcher alone, against a store whose answers the test gives by hand and a clock the test
 * moves: no database, no timers, every interleaving chosen.
 */
@DisplayName("WriteBehindBatcher")
class WriteBehindBatcherTest {
  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
  private static final long ACK_TIMEOUT = 1_000 * MS;
  private static final long MAX_LAG = 400 * MS;
  private static final long FLUSH = 50 * MS;

  /** One write the batcher sent, answered when the test says so. */
  private record Attempt(long epoch, long prev, long seq, long reserve, List<PoolChange> changes, Promise<Outcome> answer) {}

  private final List<Attempt> attempts = new ArrayList<>();
  private final List<Long> undoneTo = new ArrayList<>();
  private final List<List<PoolChange>> committed = new ArrayList<>();
  private final List<Long> forgetMarks = new ArrayList<>();
  private long now = 1_000_000 * MS;
  private long reserve = 100;
  private boolean fenced;

  private WriteBehindBatcher batcher(boolean durable) {
    return batcher(durable, 1);
  }

  private WriteBehindBatcher batcher(boolean durable, int inFlight) {
    WriteBehindBatcher.BatchStore store = (epoch, prev, seq, reserveUpTo, changes) -> {
      Promise<Outcome> answer = Promise.promise();
      attempts.add(new Attempt(epoch, prev, seq, reserveUpTo, changes, answer));
      return answer.future();
    };
    WriteBehindBatcher.Listener listener = new WriteBehindBatcher.Listener() {
      @Override
      public void undoTo(long mark) {
        undoneTo.add(mark);
      }

      @Override
      public void committed(List<PoolChange> changes, long reservedUpTo, long firstUnwrittenMark) {
        committed.add(changes);
        forgetMarks.add(firstUnwrittenMark);
      }

      @Override
      public void fencedOut() {
        fenced = true;
      }

      @Override
      public long generationsToReserve() {
        return reserve;
      }
    };
    return new WriteBehindBatcher(store, listener, () -> now, durable, 100, inFlight, ACK_TIMEOUT, MAX_LAG, FLUSH, 7, 41, now);
  }

  private static List<PoolChange> changes(int n) {
    List<PoolChange> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(new PoolChange(PoolChange.Kind.ENDED, i + 1, UUID.randomUUID(), UUID.randomUUID(), 0, 1, 1,
          EndReason.RELEASED, 0, 1, 1, null, 0, null, 0));
    }
    return out;
  }

  /** Answers every attempt still open (answers may send new ones, which stay open). */
  private void answerOpen(Outcome outcome) {
    for (Attempt attempt : new ArrayList<>(attempts)) {
      if (!attempt.answer().future().isComplete()) {
        attempt.answer().complete(outcome);
      }
    }
  }

  /** Refuses every attempt still open: the server answered with an error, so none was written. */
  private void refuseOpen() {
    for (Attempt attempt : new ArrayList<>(attempts)) {
      if (!attempt.answer().future().isComplete()) {
        attempt.answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
      }
    }
  }

  private Attempt last() {
    return attempts.get(attempts.size() - 1);
  }

  private void pass(long nanos, WriteBehindBatcher batcher) {
    long end = now + nanos;
    while (now < end) {
      now = Math.min(end, now + 10 * MS);
      batcher.tick();
    }
  }

  @Nested
  @DisplayName("in durable mode")
  class Durable {
    @Test
    @DisplayName("writes at once, with the claimed epoch and the next sequence number, and acknowledges on commit")
    void writesAndAcknowledges() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> ack = Promise.promise();
      List<PoolChange> first = changes(2);
      batcher.add(first, 10, ack);
      assertThat(attempts).hasSize(1);
      assertThat(last().epoch()).isEqualTo(7);
      assertThat(last().seq()).isEqualTo(42);
      assertThat(last().reserve()).isEqualTo(100);
      assertThat(last().changes()).isEqualTo(first);
      assertThat(ack.future().isComplete()).isFalse();
      last().answer().complete(Outcome.APPLIED);
      assertThat(ack.future().succeeded()).isTrue();
      assertThat(committed).containsExactly(first);
      assertThat(forgetMarks).containsExactly(-1L);
      batcher.add(changes(1), 11, Promise.promise());
      assertThat(last().seq()).isEqualTo(43);
    }

    @Test
    @DisplayName("gathers what arrives while a batch is in flight into the next one (group commit)")
    void groupCommit() {
      WriteBehindBatcher batcher = batcher(true);
      batcher.add(changes(1), 10, Promise.promise());
      Promise<Void> second = Promise.promise();
      Promise<Void> third = Promise.promise();
      batcher.add(changes(2), 11, second);
      batcher.add(changes(3), 12, third);
      assertThat(attempts).hasSize(1);
      attempts.get(0).answer().complete(Outcome.APPLIED);
      assertThat(attempts).hasSize(2);
      assertThat(attempts.get(1).changes()).hasSize(5);
      assertThat(forgetMarks).containsExactly(11L);
      attempts.get(1).answer().complete(Outcome.APPLIED);
      assertThat(second.future().succeeded()).isTrue();
      assertThat(third.future().succeeded()).isTrue();
    }

    @Test
    @DisplayName("retries a failed batch with the same content and number after a backoff, and acknowledges when it commits")
    void retriesWithBackoff() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> ack = Promise.promise();
      batcher.add(changes(2), 10, ack);
      last().answer().fail(new WriteBehindBatcher.NotSentException("no connection", new RuntimeException("refused")));
      assertThat(batcher.failure()).isEqualTo("refused");
      assertThat(batcher.refusal()).startsWith("The database is not accepting writes (refused)");
      pass(40 * MS, batcher);
      assertThat(attempts).hasSize(1);
      pass(20 * MS, batcher);
      assertThat(attempts).hasSize(2);
      assertThat(attempts.get(1).seq()).isEqualTo(attempts.get(0).seq());
      assertThat(attempts.get(1).changes()).isSameAs(attempts.get(0).changes());
      last().answer().fail(new WriteBehindBatcher.NotSentException("no connection", new RuntimeException("refused")));
      pass(90 * MS, batcher);
      assertThat(attempts).hasSize(2);
      pass(20 * MS, batcher);
      assertThat(attempts).hasSize(3);
      last().answer().complete(Outcome.APPLIED);
      assertThat(ack.future().succeeded()).isTrue();
      assertThat(batcher.failure()).isNull();
      assertThat(batcher.refusal()).isNull();
    }

    @Test
    @DisplayName("undoes and refuses, at the ack timeout, a batch every attempt of which was refused, and all queued after it")
    void undoesAtTimeout() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> first = Promise.promise();
      Promise<Void> second = Promise.promise();
      batcher.add(changes(1), 10, first);
      batcher.add(changes(1), 11, second);
      last().answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
      pass(ACK_TIMEOUT - 20 * MS, batcher);
      assertThat(first.future().isComplete()).isFalse();
      for (int i = 1; i < attempts.size(); i++) {
        if (!attempts.get(i).answer().future().isComplete()) {
          attempts.get(i).answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
        }
      }
      pass(60 * MS, batcher);
      assertThat(undoneTo).containsExactly(10L);
      assertThat(first.future().failed()).isTrue();
      assertThat(first.future().cause()).isInstanceOf(WriteBehindBatcher.RefusedException.class)
          .hasMessageStartingWith("The database did not confirm the change within 1000 ms (down)")
          .hasMessageEndingWith("nothing was changed. Try again shortly.");
      assertThat(second.future().failed()).isTrue();
      assertThat(batcher.pendingChanges()).isZero();
      assertThat(committed).isEmpty();
      // The next batch stands on the same predecessor under a new number: no late attempt of the
      // undone batch can ever match it.
      Attempt undone = attempts.get(0);
      pass(10 * MS, batcher);
      assertThat(last()).isNotEqualTo(undone);
      assertThat(last().prev()).isEqualTo(undone.prev()).isEqualTo(41);
      assertThat(last().seq()).isGreaterThan(undone.seq());
    }

    @Test
    @DisplayName("undoes a refused batch only from its first waiting change; expiries before it are written later")
    void undoKeepsWhatNobodyWaitsFor() {
      WriteBehindBatcher batcher = batcher(true);
      batcher.add(changes(1), 9, null);
      last().answer().complete(Outcome.APPLIED);
      Promise<Void> blocker = Promise.promise();
      batcher.add(changes(1), 10, blocker);
      Attempt inFlight = last();
      List<PoolChange> expiries = changes(2);
      batcher.add(expiries, 11, null);
      Promise<Void> waiting = Promise.promise();
      batcher.add(changes(1), 12, waiting);
      inFlight.answer().complete(Outcome.APPLIED);
      // The expiries and the waiting change now travel together, and every attempt is refused.
      assertThat(last().changes()).hasSize(3);
      last().answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
      for (int i = 0; i < 200 && !waiting.future().isComplete(); i++) {
        pass(10 * MS, batcher);
        if (!last().answer().future().isComplete()) {
          last().answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
        }
      }
      assertThat(waiting.future().cause()).isInstanceOf(WriteBehindBatcher.RefusedException.class);
      assertThat(undoneTo).containsExactly(12L);
      assertThat(batcher.pendingChanges()).isEqualTo(2);
      pass(2_000 * MS, batcher);
      Attempt retry = last();
      assertThat(retry.changes()).isEqualTo(expiries);
      retry.answer().complete(Outcome.APPLIED);
      assertThat(committed).endsWith(expiries);
    }

    @Test
    @DisplayName("keeps a batch that may have been written until the database says so: a late success is acknowledged")
    void inDoubtIsResolvedByRetry() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> ack = Promise.promise();
      batcher.add(changes(1), 10, ack);
      last().answer().fail(new IllegalStateException("Connection reset"));
      assertThat(batcher.inDoubt()).isTrue();
      assertThat(batcher.refusal()).isEqualTo("The database has not confirmed recent changes yet; try again shortly.");
      pass(ACK_TIMEOUT + 100 * MS, batcher);
      for (int i = 1; i < attempts.size(); i++) {
        if (!attempts.get(i).answer().future().isComplete()) {
          attempts.get(i).answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
        }
      }
      pass(300 * MS, batcher);
      assertThat(undoneTo).as("a batch in doubt is never undone").isEmpty();
      assertThat(ack.future().isComplete()).isFalse();
      pass(100 * MS, batcher);
      Attempt retry = attempts.stream().filter(a -> !a.answer().future().isComplete()).findFirst().orElseThrow();
      retry.answer().complete(Outcome.ALREADY_APPLIED);
      assertThat(ack.future().succeeded()).isTrue();
      assertThat(committed).hasSize(1);
      assertThat(batcher.inDoubt()).isFalse();
    }

    @Test
    @DisplayName("tells callers the outcome is unknown after twice the ack timeout, and still records the batch when it lands")
    void outcomeUnknown() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> ack = Promise.promise();
      batcher.add(changes(1), 10, ack);
      Attempt hung = last();
      pass(2 * ACK_TIMEOUT - 20 * MS, batcher);
      assertThat(ack.future().isComplete()).isFalse();
      pass(40 * MS, batcher);
      assertThat(ack.future().cause()).isInstanceOf(WriteBehindBatcher.OutcomeUnknownException.class);
      hung.answer().complete(Outcome.APPLIED);
      assertThat(committed).hasSize(1);
      assertThat(undoneTo).isEmpty();
    }

    @Test
    @DisplayName("undoes only from the first waiting change queued behind a stuck batch that nobody waits for")
    void undoesQueuedBehind() {
      WriteBehindBatcher batcher = batcher(true);
      batcher.add(changes(1), 10, null);
      Attempt stuck = last();
      Promise<Void> waiting = Promise.promise();
      batcher.add(changes(1), 11, null);
      batcher.add(changes(1), 12, waiting);
      pass(ACK_TIMEOUT + 20 * MS, batcher);
      assertThat(undoneTo).containsExactly(12L);
      assertThat(waiting.future().failed()).isTrue();
      stuck.answer().complete(Outcome.APPLIED);
      assertThat(attempts.get(attempts.size() - 1).changes()).hasSize(1);
      last().answer().complete(Outcome.APPLIED);
      assertThat(committed).hasSize(2);
      assertThat(batcher.idle()).isTrue();
    }

    @Test
    @DisplayName("stops for good, undoing and refusing everything, when another writer fenced it out")
    void fencedOut() {
      WriteBehindBatcher batcher = batcher(true);
      Promise<Void> first = Promise.promise();
      Promise<Void> second = Promise.promise();
      batcher.add(changes(1), 10, first);
      batcher.add(changes(1), 11, second);
      last().answer().complete(Outcome.FENCED);
      assertThat(fenced).isTrue();
      assertThat(undoneTo).containsExactly(10L);
      assertThat(first.future().failed()).isTrue();
      assertThat(second.future().failed()).isTrue();
      assertThat(batcher.refusal()).startsWith("Another service instance has taken over the database");
      batcher.add(changes(1), 12, null);
      pass(1_000 * MS, batcher);
      assertThat(attempts).hasSize(1);
    }
  }

  @Nested
  @DisplayName("history reads")
  class Barriers {
    @Test
    @DisplayName("a barrier completes once everything queued before it is committed, not what came after")
    void barrierOrder() {
      WriteBehindBatcher batcher = batcher(true);
      batcher.add(changes(1), 10, Promise.promise());
      Future<Void> barrier = batcher.barrier();
      batcher.add(changes(1), 11, Promise.promise());
      assertThat(barrier.isComplete()).isFalse();
      attempts.get(0).answer().complete(Outcome.APPLIED);
      assertThat(barrier.succeeded()).isTrue();
      assertThat(batcher.barrier().isComplete()).isFalse();
    }

    @Test
    @DisplayName("a barrier fails at once while writes fail, rather than keep the read waiting")
    void barrierWhileFailing() {
      WriteBehindBatcher batcher = batcher(true);
      batcher.add(changes(1), 10, Promise.promise());
      Future<Void> waiting = batcher.barrier();
      last().answer().fail(new WriteBehindBatcher.NotSentException("refused", new RuntimeException("down")));
      assertThat(waiting.failed()).isTrue();
      assertThat(batcher.barrier().failed()).isTrue();
    }
  }

  @Nested
  @DisplayName("in memory mode")
  class Memory {
    @Test
    @DisplayName("writes every flush interval, never undoes, and retries until the batch commits")
    void flushInterval() {
      WriteBehindBatcher batcher = batcher(false);
      batcher.add(changes(1), -1, null);
      pass(FLUSH, batcher);
      assertThat(attempts).hasSize(1);
      last().answer().complete(Outcome.APPLIED);
      batcher.add(changes(3), -1, null);
      batcher.tick();
      assertThat(attempts).hasSize(1);
      pass(FLUSH, batcher);
      assertThat(attempts).hasSize(2);
      assertThat(last().changes()).hasSize(3);
      last().answer().fail(new IllegalStateException("reset"));
      pass(3 * ACK_TIMEOUT, batcher);
      assertThat(undoneTo).isEmpty();
      answerOpen(Outcome.APPLIED);
      assertThat(committed).hasSize(2);
    }

    @Test
    @DisplayName("refuses new changes once the oldest unwritten change is older than the lag bound")
    void lagBound() {
      WriteBehindBatcher batcher = batcher(false);
      pass(FLUSH, batcher);
      answerOpen(Outcome.APPLIED);
      batcher.add(changes(1), -1, null);
      pass(FLUSH, batcher);
      assertThat(batcher.refusal()).isNull();
      pass(MAX_LAG, batcher);
      assertThat(batcher.refusal()).matches("Writes to the database are \\d+ ms behind; try again shortly\\.");
      answerOpen(Outcome.APPLIED);
      // Written now, but sent long ago: acknowledging again needs a fresh proof of life.
      assertThat(batcher.refusal()).isNotNull();
      pass(10 * MS, batcher);
      answerOpen(Outcome.APPLIED);
      assertThat(batcher.refusal()).isNull();
    }

    @Test
    @DisplayName("keeps a recent proof of life in the database when idle, and refuses once none is confirmed within the lag bound")
    void proofOfLife() {
      WriteBehindBatcher batcher = batcher(false);
      pass(MAX_LAG / 4 + 10 * MS, batcher);
      assertThat(attempts).hasSize(1);
      assertThat(last().changes()).isEmpty();
      pass(MAX_LAG, batcher);
      assertThat(batcher.refusal()).startsWith("Writes to the database are");
      last().answer().complete(Outcome.APPLIED);
      assertThat(batcher.refusal()).as("the proof was sent more than the lag bound ago").isNotNull();
      pass(10 * MS, batcher);
      last().answer().complete(Outcome.APPLIED);
      assertThat(batcher.refusal()).isNull();
    }

    @Test
    @DisplayName("counts a batch written by an earlier attempt as proof only from when that first attempt was sent")
    void alreadyAppliedProof() {
      WriteBehindBatcher batcher = batcher(false);
      pass(MAX_LAG / 4 + 10 * MS, batcher);
      long firstSent = now;
      last().answer().fail(new IllegalStateException("reset"));
      pass(MAX_LAG, batcher);
      last().answer().complete(Outcome.ALREADY_APPLIED);
      assertThat(batcher.sinceConfirmedNanos()).isGreaterThanOrEqualTo(now - firstSent);
    }
  }

  @Nested
  @DisplayName("with two batches in flight")
  class Pipelined {
    private final RuntimeException down = new RuntimeException("down");

    @Test
    @DisplayName("sends a second batch on top of the first while it commits, and acknowledges both in batch order")
    void secondOnTopOfFirst() {
      WriteBehindBatcher batcher = batcher(true, 2);
      Promise<Void> first = Promise.promise();
      Promise<Void> second = Promise.promise();
      Promise<Void> third = Promise.promise();
      List<PoolChange> one = changes(1);
      List<PoolChange> two = changes(2);
      batcher.add(one, 10, first);
      batcher.add(two, 11, second);
      batcher.add(changes(3), 12, third);
      assertThat(attempts).hasSize(2);
      assertThat(attempts.get(0).prev()).isEqualTo(41);
      assertThat(attempts.get(0).seq()).isEqualTo(42);
      assertThat(attempts.get(1).prev()).isEqualTo(42);
      assertThat(attempts.get(1).seq()).isEqualTo(43);
      // The second's answer comes first (another connection): it waits for the first's.
      attempts.get(1).answer().complete(Outcome.APPLIED);
      assertThat(second.future().isComplete()).isFalse();
      assertThat(committed).isEmpty();
      attempts.get(0).answer().complete(Outcome.APPLIED);
      assertThat(first.future().succeeded()).isTrue();
      assertThat(second.future().succeeded()).isTrue();
      assertThat(committed).containsExactly(one, two);
      assertThat(forgetMarks).containsExactly(11L, 12L);
      assertThat(last().prev()).isEqualTo(43);
      assertThat(last().seq()).isEqualTo(44);
      last().answer().complete(Outcome.APPLIED);
      assertThat(third.future().succeeded()).isTrue();
      assertThat(batcher.idle()).isTrue();
    }

    @Test
    @DisplayName("sends a batch that ran before its predecessor again once the predecessor has its answer")
    void behindIsSentAgain() {
      WriteBehindBatcher batcher = batcher(true, 2);
      Promise<Void> second = Promise.promise();
      batcher.add(changes(1), 10, Promise.promise());
      batcher.add(changes(1), 11, second);
      attempts.get(1).answer().complete(Outcome.BEHIND);
      pass(100 * MS, batcher);
      assertThat(attempts).as("not again while the predecessor is outstanding").hasSize(2);
      attempts.get(0).answer().complete(Outcome.APPLIED);
      assertThat(attempts).hasSize(3);
      assertThat(last().prev()).isEqualTo(42);
      assertThat(last().seq()).isEqualTo(43);
      last().answer().complete(Outcome.APPLIED);
      assertThat(second.future().succeeded()).isTrue();
      assertThat(committed).hasSize(2);
      assertThat(undoneTo).isEmpty();
    }

    @Test
    @DisplayName("stops when a batch sent with nothing before it unwritten finds the database elsewhere")
    void behindFirstInLineStops() {
      WriteBehindBatcher batcher = batcher(true, 2);
      Promise<Void> first = Promise.promise();
      batcher.add(changes(1), 10, first);
      batcher.add(changes(1), 11, Promise.promise());
      attempts.get(0).answer().complete(Outcome.BEHIND);
      assertThat(fenced).isTrue();
      assertThat(first.future().failed()).isTrue();
      assertThat(undoneTo).containsExactly(10L);
      attempts.get(1).answer().complete(Outcome.APPLIED);
      assertThat(committed).as("nothing is recorded once stopped").isEmpty();
    }

    @Test
    @DisplayName("forms no new batch while the oldest fails, and undoes both at the timeout under numbers never used again")
    void refusedChainIsUndone() {
      WriteBehindBatcher batcher = batcher(true, 2);
      Promise<Void> first = Promise.promise();
      Promise<Void> second = Promise.promise();
      batcher.add(changes(1), 10, first);
      batcher.add(changes(1), 11, second);
      attempts.get(0).answer().fail(new WriteBehindBatcher.NotSentException("refused", down));
      batcher.add(changes(1), 12, Promise.promise());
      assertThat(attempts).as("nothing new on top of a failed batch").hasSize(2);
      pass(ACK_TIMEOUT + 100 * MS, batcher);
      assertThat(undoneTo).as("only the change never sent, not while the second batch may still commit")
          .containsExactly(12L);
      attempts.get(1).answer().complete(Outcome.BEHIND);
      refuseOpen();
      pass(20 * MS, batcher);
      assertThat(undoneTo).containsExactly(12L, 10L);
      assertThat(first.future().cause()).isInstanceOf(WriteBehindBatcher.RefusedException.class);
      assertThat(second.future().cause()).isInstanceOf(WriteBehindBatcher.RefusedException.class);
      Attempt next = attempts.stream().filter(attempt -> attempt.seq() > 43).findFirst().orElseThrow();
      assertThat(next.prev()).isEqualTo(41);
      assertThat(next.seq()).isEqualTo(44);
      answerOpen(Outcome.APPLIED);
      assertThat(committed).allSatisfy(batch -> assertThat(batch).isEmpty());
    }

    @Test
    @DisplayName("undoes the batch behind one in doubt, never the one in doubt")
    void undoesBehindInDoubt() {
      WriteBehindBatcher batcher = batcher(true, 2);
      Promise<Void> first = Promise.promise();
      Promise<Void> second = Promise.promise();
      batcher.add(changes(1), 10, first);
      batcher.add(changes(1), 11, second);
      attempts.get(0).answer().fail(new IllegalStateException("Connection reset"));
      attempts.get(1).answer().fail(new WriteBehindBatcher.NotSentException("refused", down));
      pass(ACK_TIMEOUT + 20 * MS, batcher);
      refuseOpen();
      pass(40 * MS, batcher);
      assertThat(undoneTo).containsExactly(11L);
      assertThat(second.future().cause()).isInstanceOf(WriteBehindBatcher.RefusedException.class);
      assertThat(first.future().isComplete()).isFalse();
      assertThat(batcher.inDoubt()).isTrue();
      for (int i = 0; i < 300 && attempts.stream().allMatch(a -> a.answer().future().isComplete()); i++) {
        pass(10 * MS, batcher);
      }
      Attempt retry = attempts.stream().filter(a -> !a.answer().future().isComplete()).findFirst().orElseThrow();
      assertThat(retry.seq()).isEqualTo(42);
      retry.answer().complete(Outcome.ALREADY_APPLIED);
      assertThat(first.future().succeeded()).isTrue();
      assertThat(committed).hasSize(1);
    }
  }
}
