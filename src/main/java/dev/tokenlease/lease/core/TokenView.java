package dev.tokenlease.lease.core;

import java.time.Instant;
import java.util.UUID;

/**
 * An immutable picture of one token at one moment.
 *
 * @param generation the fencing number of the current lease, 0 when available
 * @param expiresAt when the current lease ends, null when available
 */
public record TokenView(
    UUID tokenId,
    TokenState state,
    UUID currentUserId,
    Instant activatedAt,
    Instant releasedAt,
    long usageCount,
    long generation,
    Instant expiresAt) implements java.io.Serializable {}
