package dev.tokenlease.lease.persistence;

import dev.tokenlease.lease.core.EndReason;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

/** What history reads ask for and get back; history lives in PostgreSQL only. */
public final class History {
  private History() {}

  /**
   * @param from inclusive lower bound on {@code started_at}, or null
   * @param to exclusive upper bound on {@code started_at}, or null
   * @param beforeGeneration keyset cursor: only usages granted before this one, or null
   * @param pool only usages of tokens of pools of this name, or null for all pools
   */
  public record UserUsages(UUID userId, Instant from, Instant to, int limit, Long beforeGeneration, String pool) implements java.io.Serializable {
    /** Over all pools. */
    public UserUsages(UUID userId, Instant from, Instant to, int limit, Long beforeGeneration) {
      this(userId, from, to, limit, beforeGeneration, null);
    }
  }

  /** @param pool the name of the pool of the token (of the pool as it was, if deleted since) */
  public record Usage(
      long generation, UUID tokenId, UUID userId, Instant startedAt, Instant endedAt, EndReason endReason,
      String pool) implements java.io.Serializable {}

  public record TokenUsageList(UUID tokenId, List<Usage> usages) implements java.io.Serializable {}

  /** @param nextBeforeGeneration where the next page starts, or null on the last page */
  public record UserUsagePage(UUID userId, List<Usage> usages, Long nextBeforeGeneration) implements java.io.Serializable {}
}
