package dev.tokenlease.lease.routes;

import dev.tokenlease.lease.bus.CommittedChanges;
import dev.tokenlease.lease.core.PoolChange;
import io.vertx.core.buffer.Buffer;
import java.util.ListIterator;
import java.util.function.BiFunction;

/**
 * The latest committed changes one HTTP verticle has seen, by id, for streams that resume from a
 * {@code Last-Event-ID} or are still sending a burst. Ids of one run are consecutive, so the ring
 * holds one unbroken range of ids, {@code [start, next)}, in a circular array where a change's slot
 * is its id modulo the capacity: appending and looking up are O(1), and a batch larger than the ring
 * costs only the ring's size. It keeps references to the batches' immutable changes (the same
 * objects in every verticle's ring) and, once a client has been sent one, its encoded event, so each
 * change is encoded once per verticle however many clients follow. Confined to its verticle's event loop.
 */
final class RecentChanges {
  /** Nothing learned yet: no batch has arrived and the pool has not said where ids continue. */
  static final long UNKNOWN = Long.MIN_VALUE;

  private final PoolChange[] slots;
  private final Buffer[] frames;
  private long start = UNKNOWN;
  private long next = UNKNOWN;

  RecentChanges(int capacity) {
    slots = new PoolChange[capacity];
    frames = new Buffer[capacity];
  }

  /** Whether the ring knows where the ids of this run stand. */
  boolean known() {
    return next != UNKNOWN;
  }

  /** The oldest id held ({@link #next} when empty). */
  long start() {
    return start;
  }

  /** The id after the newest one held: the id the next change will have. */
  long next() {
    return next;
  }

  /** Where the ids continue, as the pool said before any batch arrived: the ring is then empty there. */
  void startAt(long nextId) {
    if (!known()) {
      start = nextId;
      next = nextId;
    }
  }

  void append(CommittedChanges batch) {
    long first = batch.firstId();
    int size = batch.changes().size();
    if (first != next) {
      // The first batch seen here (or a gap, which the pool's ordered publishing never leaves): start over at it.
      start = first;
      next = first;
    }
    int skip = Math.max(0, size - slots.length);
    ListIterator<PoolChange> changes = batch.changes().listIterator(skip);
    for (long id = first + skip; changes.hasNext(); id++) {
      slots[slot(id)] = changes.next();
      frames[slot(id)] = null;
    }
    next = first + size;
    start = Math.max(start, next - slots.length);
  }

  /** The change with this id; only for {@code start() <= id < next()}. */
  PoolChange get(long id) {
    return slots[slot(id)];
  }

  /** The encoded event of the change with this id, made by {@code encode} the first time it is asked for. */
  Buffer frame(long id, BiFunction<Long, PoolChange, Buffer> encode) {
    int slot = slot(id);
    Buffer frame = frames[slot];
    if (frame == null) {
      frame = encode.apply(id, slots[slot]);
      frames[slot] = frame;
    }
    return frame;
  }

  private int slot(long id) {
    return (int) Math.floorMod(id, (long) slots.length);
  }
}
