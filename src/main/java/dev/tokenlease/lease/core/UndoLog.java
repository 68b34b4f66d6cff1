package dev.tokenlease.lease.core;

import java.util.ArrayDeque;
import java.util.UUID;

/**
 * The inverse of every step the pool took since the oldest change that is not yet known to be
 * written, so that changes the database never accepted can be taken back exactly (durable mode:
 * a request answered with an error must change nothing). Steps are undone newest first; each one
 * then finds the pool exactly as it left it, which is what makes the inverses simple.
 *
 * <p>Positions are absolute: {@link #mark()} names a point in the history of steps, and stays valid
 * while steps before it are forgotten.
 */
final class UndoLog {
  /** One recorded step; {@link #undo()} puts back what the step changed. */
  private interface Step {
    void undo();
  }

  private final ArrayDeque<Step> steps = new ArrayDeque<>();
  private long forgotten;

  long mark() {
    return forgotten + steps.size();
  }

  /** Takes back every step recorded at or after {@code mark}, newest first. */
  void undoTo(long mark) {
    if (mark < forgotten) {
      throw new IllegalStateException("steps before " + mark + " were already forgotten (at " + forgotten + ")");
    }
    while (mark() > mark) {
      steps.pollLast().undo();
    }
  }

  /** Drops the steps before {@code mark}: they are written and will never be undone. */
  void forgetBefore(long mark) {
    while (forgotten < mark && !steps.isEmpty()) {
      steps.pollFirst();
      forgotten++;
    }
  }

  void removed(ActiveLeases active, Token token) {
    long order = token.heapOrder;
    steps.addLast(() -> active.restore(token, order));
  }

  void added(ActiveLeases active, Token token) {
    steps.addLast(() -> active.remove(token));
  }

  void removed(TokenQueue queue, Token token, Token prev) {
    steps.addLast(() -> queue.insertAfter(prev, token));
  }

  void appended(TokenQueue queue, Token token) {
    steps.addLast(() -> queue.remove(token));
  }

  /** Before a token's fields change. */
  void tokenState(Token token) {
    Lease lease = token.lease;
    long activated = token.activatedAtMillis;
    long released = token.releasedAtMillis;
    long usages = token.usageCount;
    UUID evictedUser = token.evictedUserId;
    long evictedGeneration = token.evictedGeneration;
    boolean revoked = token.noticeRevoked;
    steps.addLast(() -> {
      token.lease = lease;
      token.activatedAtMillis = activated;
      token.releasedAtMillis = released;
      token.usageCount = usages;
      token.evictedUserId = evictedUser;
      token.evictedGeneration = evictedGeneration;
      token.noticeRevoked = revoked;
    });
  }

  /**
   * After a change kept outside the tokens (the remembered Idempotency-Keys, the per-user lease
   * counts); {@code inverse} puts back what changed.
   */
  void step(Runnable inverse) {
    steps.addLast(inverse::run);
  }

  /** Before a lease's end moves (a renewal). */
  void leaseTimes(Lease lease) {
    long expires = lease.expiresAtMillis;
    long deadline = lease.deadlineNanos;
    steps.addLast(() -> {
      lease.expiresAtMillis = expires;
      lease.deadlineNanos = deadline;
    });
  }
}
