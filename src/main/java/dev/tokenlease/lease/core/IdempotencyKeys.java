package dev.tokenlease.lease.core;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * The Idempotency-Keys of activations, each with the lease it was granted, so that a retry is
 * answered that lease instead of a new one. A key is remembered for one lease TTL from its grant
 * and, beyond that, for as long as its lease lives (a renewed lease). Within the TTL a key whose
 * lease has ended is still known, so that a late retry is refused rather than granted anew.
 *
 * <p>Bounded: with one fixed TTL, grant order is the order in which keys come due, so the keys wait
 * in one queue; at most {@link #QUEUED} of them. A key that leaves the queue (its TTL passed, or the
 * queue is full) is forgotten at once if its lease has ended, else when the lease ends. So at most
 * {@code QUEUED} keys plus one per active lease are kept.
 *
 * <p>Every change is recorded in the pool's undo log, so a refused activation leaves no key behind.
 */
final class IdempotencyKeys {
  /** The most keys waiting in the queue: about 4 MB of keys of the longest length. */
  static final int QUEUED = 10_000;

  /** A remembered key and the lease it was granted. */
  static final class Entry {
    final String key;
    final Token token;
    final Lease lease;
    final long forgetAtNanos;
    boolean queued;

    Entry(String key, Token token, Lease lease, long forgetAtNanos) {
      this.key = key;
      this.token = token;
      this.lease = lease;
      this.forgetAtNanos = forgetAtNanos;
    }

    /** Whether its lease is still the token's lease. */
    boolean alive() {
      return token.lease == lease;
    }
  }

  private final Map<String, Entry> byKey = new HashMap<>();
  private final ArrayDeque<Entry> byGrant = new ArrayDeque<>();
  private final UndoLog undo;

  /** @param undo where each change's inverse goes, or null */
  IdempotencyKeys(UndoLog undo) {
    this.undo = undo;
  }

  Entry find(String key) {
    return byKey.get(key);
  }

  /** Remembers a key just granted, until {@code forgetAtNanos} and while its lease lives. */
  void remember(Token token, Lease lease, long forgetAtNanos) {
    if (byGrant.size() >= QUEUED) {
      dequeueOldest();
    }
    String key = lease.idempotencyKey;
    Entry entry = new Entry(key, token, lease, forgetAtNanos);
    enqueue(entry);
    if (undo != null) {
      undo.step(() -> {
        byGrant.pollLast();
        byKey.remove(key);
      });
    }
  }

  /**
   * The key of a lease restored at start-up: queued if its TTL from the grant has not passed, else
   * kept for as long as its lease lives. Called in grant order; not undoable.
   */
  void restore(Token token, Lease lease, long forgetAtNanos, long nowNanos) {
    Entry entry = new Entry(lease.idempotencyKey, token, lease, forgetAtNanos);
    if (nowNanos - forgetAtNanos < 0) {
      if (byGrant.size() >= QUEUED) {
        byGrant.pollFirst().queued = false;
      }
      enqueue(entry);
    } else {
      byKey.put(entry.key, entry);
    }
  }

  private void enqueue(Entry entry) {
    entry.queued = true;
    byKey.put(entry.key, entry);
    byGrant.addLast(entry);
  }

  /** Lets go of the keys whose TTL from the grant has passed: now, or when their lease ends. */
  void forgetDue(long nowNanos) {
    for (Entry oldest = byGrant.peekFirst(); oldest != null && nowNanos - oldest.forgetAtNanos >= 0;
        oldest = byGrant.peekFirst()) {
      dequeueOldest();
    }
  }

  /** A lease ended: its key goes with it if it is no longer queued. */
  void ended(Lease lease) {
    if (lease.idempotencyKey == null) {
      return;
    }
    Entry entry = byKey.get(lease.idempotencyKey);
    if (entry != null && entry.lease == lease && !entry.queued) {
      byKey.remove(entry.key);
      if (undo != null) {
        undo.step(() -> byKey.put(entry.key, entry));
      }
    }
  }

  private void dequeueOldest() {
    Entry oldest = byGrant.pollFirst();
    oldest.queued = false;
    boolean forgotten = !oldest.alive() && byKey.get(oldest.key) == oldest;
    if (forgotten) {
      byKey.remove(oldest.key);
    }
    if (undo != null) {
      undo.step(() -> {
        if (forgotten) {
          byKey.put(oldest.key, oldest);
        }
        oldest.queued = true;
        byGrant.addFirst(oldest);
      });
    }
  }
}
