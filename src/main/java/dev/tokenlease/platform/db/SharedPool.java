package dev.tokenlease.platform.db;

import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;

/**
 * The one PostgreSQL pool the capabilities share for their reads and writes (M2M clients and
 * tokens, the vault). Each verticle gets its own handle; the connections close with the last one.
 * The lease write path keeps a pool of its own, tuned for it ({@code lock_timeout}, custom plans,
 * short connect timeouts), so that no vault or M2M query ever queues ahead of a lease's commit.
 */
public final class SharedPool {
  private static final String NAME = "token-service-shared";
  private static final int MAX_SIZE = 4;

  private SharedPool() {}

  public static Pool handle(Vertx vertx, PgConnectOptions connectOptions) {
    return PgBuilder.pool()
        .with(new PoolOptions().setMaxSize(MAX_SIZE).setShared(true).setName(NAME))
        .connectingTo(connectOptions)
        .using(vertx)
        .build();
  }
}
