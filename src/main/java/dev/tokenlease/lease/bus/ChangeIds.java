package dev.tokenlease.lease.bus;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ids of committed changes: {@code (writer epoch << 32) | the change's number in this run},
 * handed out by the pool's verticle in commit order.
 *
 * <p>Why this scheme: the writer epoch is already persisted and goes up by one at every start (the
 * claim that fences out an earlier process), so ids grow across restarts without writing anything
 * more to the database, and an id names the run that gave it: a {@code Last-Event-ID} from before a
 * restart is recognised as such, never taken for a change of this run. Within a run ids are
 * consecutive, so a follower can tell that it missed something. A persisted batch sequence times a
 * bound was the alternative; it needs a bound on a batch's size, which one clear of a large pool
 * exceeds, and empty keep-alive batches would use the id space up quickly.
 *
 * <p>Limits, so that ids stay below 2^53 and JavaScript reads them exactly: epochs up to 2^21 - 1
 * (two million starts) and 2^32 changes per run (twelve hours at 100,000 changes a second, without a
 * restart). Past either, changes are still published on {@code tokens.events}, without ids, and the
 * live stream gets none until the next start; the log says so once.
 */
public final class ChangeIds {
  private static final Logger LOG = LoggerFactory.getLogger(ChangeIds.class);
  static final int NUMBER_BITS = 32;
  static final long MAX_EPOCH = (1L << (53 - NUMBER_BITS)) - 1;

  private long next;
  private final long limit;

  /** The run (writer epoch) that gave an id. */
  public static long run(long id) {
    return id >>> NUMBER_BITS;
  }

  ChangeIds(long epoch) {
    if (epoch < 0 || epoch > MAX_EPOCH) {
      LOG.error("Writer epoch {} is beyond what change ids can carry ({}); changes get no ids in this run", epoch,
          MAX_EPOCH);
      next = CommittedChanges.NO_IDS;
      limit = CommittedChanges.NO_IDS;
    } else {
      next = epoch << NUMBER_BITS;
      limit = next + (1L << NUMBER_BITS);
    }
  }

  /** The id of the first of {@code count} changes committed now, the rest following; or {@link CommittedChanges#NO_IDS}. */
  long assign(int count) {
    if (next == CommittedChanges.NO_IDS) {
      return CommittedChanges.NO_IDS;
    }
    if (limit - next < count) {
      LOG.error("This run has used all {} change ids; changes get no ids until the service restarts", 1L << NUMBER_BITS);
      next = CommittedChanges.NO_IDS;
      return CommittedChanges.NO_IDS;
    }
    long first = next;
    next += count;
    return first;
  }

  /** The id the next committed change will get, or {@link CommittedChanges#NO_IDS}. */
  long next() {
    return next;
  }
}
