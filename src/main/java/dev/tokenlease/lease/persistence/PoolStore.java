package dev.tokenlease.lease.persistence;

import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.platform.config.AckMode;
import io.vertx.core.Future;
import java.util.UUID;

/**
 * Everything the pool's verticle asks of its database: to be the only instance on it, the tokens,
 * the writer claim and the snapshot the pool starts from, the write-behind batches, history reads,
 * and the record of a clean stop. {@link UsageRepository} is the PostgreSQL one; the verticle's
 * unit test deploys it against one in memory.
 */
public interface PoolStore extends WriteBehindBatcher.BatchStore {
  /**
   * What this process starts from as the pool's writer.
   *
   * @param lastGeneration no generation at or below it may be handed out again
   * @param reservedUpTo generations up to this are reserved for this run
   * @param blockedForMillis how long activations must wait (after an unclean stop in memory mode,
   *     until every acknowledgment that may have been lost has expired); 0 for none
   */
  record WriterClaim(long epoch, long lastBatch, long lastGeneration, long reservedUpTo, long blockedForMillis) {}

  /** Makes this the only service instance on the database, or fails if another one is. */
  Future<Void> takeInstanceLock();

  /** Whether this is still the only instance; while it is not, the pool refuses changes. */
  boolean instanceLockHeld();

  /** Creates tokens until the store holds {@code poolSize}; refuses to shrink. */
  Future<Void> ensureTokens(int poolSize);

  /** Takes over as the only writer (a new epoch) and reads what the previous run proves. */
  Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead);

  /** The tokens, the open leases and the generation the pool starts from. */
  Future<PoolSnapshot> loadSnapshot(long lastGeneration, long activationsBlockedUntil);

  Future<History.TokenUsageList> tokenUsages(UUID tokenId);

  Future<History.UserUsagePage> userUsages(History.UserUsages query);

  /** Marks the run as stopped cleanly: every change is written, nothing was lost. */
  Future<Void> stopRun(long epoch, long lastGeneration);

  /** Lets go of the database, the instance lock with it; never fails. */
  Future<Void> close();
}
