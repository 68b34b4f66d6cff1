package dev.tokenlease.platform.config;

/** When a mutation is acknowledged to its caller. */
public enum AckMode {
  /** After the batch holding the change has committed (group commit). */
  DURABLE,
  /** At once; the change is written within the flush interval. */
  MEMORY
}
