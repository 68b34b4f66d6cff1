package dev.tokenlease.lease.persistence;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.PgConnection;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One service instance per database: a second one is refused at start. The advisory lock lives as
 * long as its connection; while it is lost the pool takes no changes, and it is taken back when
 * possible. (Should another instance take the database meanwhile, the writer epoch fences this
 * one's writes out.)
 */
public final class InstanceLock {
  private static final Logger LOG = LoggerFactory.getLogger(InstanceLock.class);
  private static final long RETRY_MILLIS = 1_000;

  private final Vertx vertx;
  private final PgConnectOptions options;
  private SqlConnection connection;
  private boolean held;
  private boolean closed;
  private long retryTimer = -1;

  public InstanceLock(Vertx vertx, PgConnectOptions options) {
    this.vertx = vertx;
    this.options = options;
  }

  /** Takes the lock, or fails if another instance holds it. */
  public Future<Void> take() {
    return PgConnection.connect(vertx, options)
        .compose(conn -> conn.preparedQuery(Sql.TRY_INSTANCE_LOCK).execute(Tuple.of(Sql.INSTANCE_LOCK_KEY))
            .compose(rows -> {
              if (!rows.iterator().next().getBoolean("locked")) {
                return conn.close().transform(done -> Future.<Void>failedFuture(new IllegalStateException(
                    "another token-service instance is running on this database")));
              }
              connection = conn;
              held = true;
              conn.closeHandler(v -> lost());
              return Future.succeededFuture();
            }));
  }

  public boolean held() {
    return held;
  }

  private void lost() {
    held = false;
    if (closed) {
      return;
    }
    LOG.error("Lost the database instance lock; refusing changes until it is held again");
    retryTimer = vertx.setTimer(RETRY_MILLIS, id -> take()
        .onSuccess(v -> LOG.info("Database instance lock held again"))
        .onFailure(err -> lost()));
  }

  public Future<Void> close() {
    closed = true;
    if (retryTimer != -1) {
      vertx.cancelTimer(retryTimer);
    }
    return connection == null ? Future.succeededFuture() : connection.close().recover(err -> Future.succeededFuture());
  }
}
