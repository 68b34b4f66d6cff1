package dev.tokenlease.lease.persistence;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolSettings;
import dev.tokenlease.lease.persistence.WriteBehindBatcher.Outcome;
import dev.tokenlease.platform.config.AckMode;
import dev.tokenlease.platform.db.Migrations;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgConnectOptions;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The batch statement against PostgreSQL, with batches sent the way the batcher pipelines them: the
 * next one before the answer to the one it stands on.
 */
@DisplayName("The batch statement on PostgreSQL")
class BatchStatementTest {
  private static final long TTL = TimeUnit.MINUTES.toMillis(2);

  private String database;
  private Vertx vertx;
  private UsageRepository repository;
  private io.vertx.core.Context loop;
  private PoolStore.WriterClaim claim;
  /** The last batch and generation the claim found, and the time the changes are stamped with. */
  private long last;
  private long g;
  private long now;
  private UUID token;

  @BeforeEach
  void open() throws Exception {
    database = TestDatabase.create();
    PgConnectOptions options = PgConnectOptions.fromUri(database);
    Migrations.migrate(options);
    vertx = Vertx.vertx();
    repository = UsageRepository.open(vertx, options, 4, 5_000, TTL);
    await(repository.takeInstanceLock());
    await(repository.ensureDefaultPool(PoolSettings.evicting("default", Duration.ofMillis(TTL)), 2));
    claim = await(repository.claim(AckMode.DURABLE, TTL, 1_000, 1_000));
    last = claim.lastBatch();
    g = claim.lastGeneration();
    now = System.currentTimeMillis();
    loop = vertx.getOrCreateContext();
    token = UUID.fromString(TestDatabase.query(database, "SELECT id FROM tokens ORDER BY seq LIMIT 1"));
  }

  @AfterEach
  void close() throws Exception {
    await(repository.close());
    await(vertx.close());
    TestDatabase.drop(database);
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  /** Batches sent together, each on top of the one before, from one event loop as the pool's verticle sends them. */
  private List<Outcome> writeTogether(List<List<PoolChange>> batches, long firstPrev) throws Exception {
    io.vertx.core.Promise<List<Outcome>> done = io.vertx.core.Promise.promise();
    loop.runOnContext(v -> {
      List<Future<Outcome>> outcomes = new java.util.ArrayList<>();
      for (int i = 0; i < batches.size(); i++) {
        outcomes.add(repository.write(claim.epoch(), firstPrev + i, firstPrev + i + 1, g + 10, batches.get(i)));
      }
      Future.all(outcomes).map(all -> outcomes.stream().map(Future::result).toList()).onComplete(done);
    });
    return await(done.future());
  }

  /** Writes one batch numbered {@code seq} on top of batch {@code prev}, for the claimed epoch. */
  private Outcome write(long prev, long seq, List<PoolChange> changes) throws Exception {
    return writeAs(claim.epoch(), prev, seq, changes);
  }

  private Outcome writeAs(long epoch, long prev, long seq, List<PoolChange> changes) throws Exception {
    io.vertx.core.Promise<Outcome> done = io.vertx.core.Promise.promise();
    loop.runOnContext(v -> repository.write(epoch, prev, seq, g + 10, changes).onComplete(done));
    return await(done.future());
  }

  private PoolChange granted(long generation, UUID user, long startedMillis, long usageCount) {
    return new PoolChange(PoolChange.Kind.GRANTED, generation, token, user, startedMillis, startedMillis + TTL,
        PoolChange.NO_TIME, null, startedMillis, PoolChange.NO_TIME, usageCount, null, 0, null, 0);
  }

  private PoolChange evicted(long generation, UUID user, long startedMillis, long endedMillis, long usageCount) {
    return new PoolChange(PoolChange.Kind.ENDED, generation, token, user, startedMillis, startedMillis + TTL,
        endedMillis, EndReason.EVICTED, startedMillis, PoolChange.NO_TIME, usageCount, user, generation, null, 0);
  }

  private String usage(long generation) {
    return TestDatabase.query(database, "SELECT coalesce(end_reason, 'open') FROM usages WHERE generation = " + generation);
  }

  @Test
  @DisplayName("applies a batch sent before its predecessor's answer on top of it, ending the usage the predecessor inserted")
  void pipelinedOnTopOfPredecessor() throws Exception {
    UUID alice = UUID.randomUUID();
    UUID bob = UUID.randomUUID();
    assertThat(writeTogether(List.of(List.of(granted(g + 1, alice, now, 1)),
        List.of(evicted(g + 1, alice, now, now + 5, 1), granted(g + 2, bob, now + 5, 2))), last))
        .containsExactly(Outcome.APPLIED, Outcome.APPLIED);
    assertThat(usage(g + 1)).as("the predecessor's usage, ended by the batch after it").isEqualTo("evicted");
    assertThat(usage(g + 2)).isEqualTo("open");
    assertThat(TestDatabase.query(database, "SELECT last_batch FROM service_state")).isEqualTo(String.valueOf(last + 2));
    assertThat(TestDatabase.query(database, "SELECT usage_count FROM tokens WHERE id = '" + token + "'")).isEqualTo("2");
  }

  @Test
  @DisplayName("writes nothing on top of a predecessor that is not in (behind), nor for another epoch (fenced); a retry of a written batch is already applied")
  void outcomes() throws Exception {
    UUID alice = UUID.randomUUID();
    List<PoolChange> grant = List.of(granted(g + 1, alice, now, 1));
    assertThat(write(last + 1, last + 2, grant)).as("its predecessor was never written").isEqualTo(Outcome.BEHIND);
    assertThat(usage(g + 1)).isNull();
    assertThat(writeAs(claim.epoch() - 1, last, last + 1, grant)).isEqualTo(Outcome.FENCED);
    assertThat(usage(g + 1)).isNull();
    assertThat(write(last, last + 3, grant)).isEqualTo(Outcome.APPLIED);
    assertThat(write(last, last + 3, grant)).isEqualTo(Outcome.ALREADY_APPLIED);
    // The numbers skipped (last + 1, last + 2) can never be built on now.
    assertThat(write(last + 2, last + 4, List.of(evicted(g + 1, alice, now, now + 1, 1)))).isEqualTo(Outcome.BEHIND);
    assertThat(usage(g + 1)).isEqualTo("open");
  }

  @Test
  @DisplayName("writes nothing while its predecessor is uncommitted on another connection, and applies on top of it once sent again")
  void predecessorOnAnotherConnection() throws Exception {
    UUID alice = UUID.randomUUID();
    List<PoolChange> end = List.of(evicted(g + 1, alice, now, now + 5, 1));
    try (java.sql.Connection other = TestDatabase.connect(database)) {
      // The predecessor, as a late attempt on another connection, not committed yet.
      other.setAutoCommit(false);
      try (java.sql.Statement st = other.createStatement()) {
        st.executeUpdate("UPDATE service_state SET last_batch = " + (last + 1));
        st.executeUpdate("INSERT INTO usages (generation, token_id, user_id, started_at, expires_at) VALUES ("
            + (g + 1) + ", '" + token + "', '" + alice + "', now(), now() + interval '2 minutes')");
      }
      // Its statement's snapshot does not show the predecessor: the fence does not match, and it
      // does not wait either.
      assertThat(write(last + 1, last + 2, end)).isEqualTo(Outcome.BEHIND);
      other.commit();
    }
    assertThat(usage(g + 1)).isEqualTo("open");
    assertThat(write(last + 1, last + 2, end)).isEqualTo(Outcome.APPLIED);
    assertThat(usage(g + 1)).isEqualTo("evicted");
  }
}
