package dev.tokenlease.lease.core;

import dev.tokenlease.platform.ApiException;

/**
 * How a waiting activation ended: granted a token, or refused (its wait ran out, its pool stopped
 * waiting or went away, its user reached the pool's limit while it waited).
 *
 * @param handle what the caller queued it with
 * @param grant the lease granted, or null when refused
 * @param refusal why it was refused, or null when granted
 * @param waitedMillis how long it waited, on the monotonic clock
 */
public record WaitOutcome(Object handle, String pool, Grant grant, ApiException refusal, long waitedMillis) {}
