package dev.tokenlease.persistence;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What the pool needs to know about the write-behind queue before it changes anything: how many
 * changes wait to be committed (a full queue refuses mutations rather than dropping them) and
 * whether the database is failing. Shared by the two verticles of one process.
 */
public final class PersistenceStatus {
  private final AtomicLong backlog = new AtomicLong();
  private volatile String failure;
  private volatile boolean lockHeld = true;

  public long backlog() {
    return backlog.get();
  }

  public void enqueued(int changes) {
    backlog.addAndGet(changes);
  }

  void committed(int changes) {
    backlog.addAndGet(-changes);
  }

  /** False while the database instance lock is lost: this instance must not change anything. */
  public boolean lockHeld() {
    return lockHeld;
  }

  void lockHeld(boolean held) {
    lockHeld = held;
  }

  /** Why the last write failed, or null while writes succeed. */
  public String failure() {
    return failure;
  }

  void failing(String reason) {
    failure = reason;
  }

  void healthy() {
    failure = null;
  }
}
