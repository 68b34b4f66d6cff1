package dev.tokenlease.lease.persistence;

import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.platform.config.AckMode;
import io.vertx.core.Future;
import java.time.Instant;
import java.util.List;
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

  /**
   * One pool as stored: its row's id, settings and creation time, and the snapshot it is rebuilt
   * from (whose generation and blocking are the claim's, not the pool's: 0 and none).
   */
  record StoredPool(int id, PoolSettings settings, Instant createdAt, PoolSnapshot snapshot) {}

  /**
   * A change of the pools refused because another process has taken over as the writer since this
   * one claimed: nothing was written.
   */
  final class FencedException extends IllegalStateException {
    public FencedException() {
      super("Another instance has taken over the database; this one no longer writes to it.");
    }
  }

  /** Makes this the only service instance on the database, or fails if another one is. */
  Future<Void> takeInstanceLock();

  /** Whether this is still the only instance; while it is not, the pool refuses changes. */
  boolean instanceLockHeld();

  /**
   * Stores the settings of the pool {@code default} (from the configuration) and creates its
   * tokens until it holds {@code poolSize}; refuses to shrink.
   */
  Future<Void> ensureDefaultPool(PoolSettings settings, int poolSize);

  /** Takes over as the only writer (a new epoch) and reads what the previous run proves. */
  Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead);

  /**
   * A claim refused because another node's ownership is still live (it confirmed a write within
   * the takeover bound): nothing was changed.
   */
  final class OwnedElsewhereException extends IllegalStateException {
    public OwnedElsewhereException(String owner) {
      super("The pools are owned by node " + owner + ", which is alive.");
    }
  }

  /**
   * In a cluster: claims as node {@code node}, but only if no other run is live, that is, the last
   * run stopped or has confirmed no write for {@code takeoverAfterMillis}; else fails with {@link
   * OwnedElsewhereException}. A store without clustering claims unconditionally.
   */
  default Future<WriterClaim> claim(AckMode mode, long leaseTtlMillis, long maxLagMillis, long reserveAhead,
      String node, long takeoverAfterMillis) {
    return claim(mode, leaseTtlMillis, maxLagMillis, reserveAhead);
  }

  /**
   * Refreshes the proof that the writer of {@code epoch} is alive, before its first batch; fenced
   * like one: false when another writer has claimed since.
   */
  default Future<Boolean> markAlive(long epoch) {
    return Future.succeededFuture(true);
  }

  /** Who owns the pools now, as the database says (in a cluster). */
  default Future<UsageRepository.Ownership> ownership() {
    return Future.failedFuture(new UnsupportedOperationException("no cluster ownership in this store"));
  }

  /** Every pool that is not deleted, in creation order, with its tokens, open leases and recent keys. */
  Future<List<StoredPool>> loadPools();

  /**
   * Creates a pool of {@code size} fresh tokens, if {@code epoch} is still the writer's ({@link
   * FencedException} otherwise); fails with the database's unique violation if a live pool has the name.
   */
  Future<StoredPool> createPool(long epoch, PoolSettings settings, int size);

  /**
   * Stores new settings of a pool and adds {@code grow} fresh tokens after position {@code size}.
   *
   * @return the tokens added
   */
  Future<List<PoolSnapshot.StoredToken>> updatePool(long epoch, int poolId, PoolSettings settings, int size, int grow);

  /** Marks a pool deleted (its row and history stay); it must have no open lease. */
  Future<Void> deletePool(long epoch, int poolId);

  /**
   * The live pool of that name as the database has it now, or null: what a change of the pools
   * whose answer was lost turns out to have done. Its tokens are listed as fresh (never leased),
   * which is all they can be when this process does not know them.
   */
  Future<StoredPool> findPool(String name);

  /** @param pool the token's pool's name, which each usage names */
  Future<History.TokenUsageList> tokenUsages(UUID tokenId, String pool);

  Future<History.UserUsagePage> userUsages(History.UserUsages query);

  /** Marks the run as stopped cleanly: every change is written, nothing was lost. */
  Future<Void> stopRun(long epoch, long lastGeneration);

  /** Lets go of the database, the instance lock with it; never fails. */
  Future<Void> close();
}
