package dev.tokenlease.lease.bus;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.bus.InMemoryPoolStore.Answer;
import dev.tokenlease.lease.core.EndReason;
import dev.tokenlease.lease.core.Grant;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.lease.core.TokenState;
import dev.tokenlease.lease.core.TokenView;
import dev.tokenlease.lease.persistence.History;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.config.AppConfig;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.Checkpoint;
import io.vertx.junit5.Timeout;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The pool's verticle deployed alone against a store in memory, on a clock the test moves: what a
 * {@link PoolClient} caller is answered, and when, in each acknowledgment mode (README, "Durability
 * modes"). No PostgreSQL, and no waiting on the real clock: deadlines, retries and flushes happen
 * when the test moves the time, at the verticle's next tick.
 */
@ExtendWith(VertxExtension.class)
// Each test takes milliseconds; one that waits for an answer that never comes should fail soon.
@Timeout(value = 10, timeUnit = TimeUnit.SECONDS)
@DisplayName("PoolVerticle")
class PoolVerticleTest {
  private static final Duration ACK_TIMEOUT = Duration.ofSeconds(1);
  private static final Duration MAX_LAG = Duration.ofMillis(500);
  private static final Duration FLUSH_INTERVAL = Duration.ofMillis(50);
  private static final Duration TTL = Duration.ofMinutes(2);
  /** Past the backoff after a batch's first failed attempt, and well within the ack timeout. */
  private static final Duration PAST_FIRST_BACKOFF = Duration.ofMillis(100);
  /** Longer than any backoff between two attempts of a batch. */
  private static final Duration PAST_RETRY_BACKOFF = Duration.ofSeconds(2);

  private final TestTime time = new TestTime();
  private final InMemoryPoolStore store = new InMemoryPoolStore();
  private Vertx vertx;
  /** Where every call to the pool is made from, so that its answers come back in the order they were given. */
  private Context caller;
  private String deployment;

  @BeforeEach
  void registerCodecs(Vertx vertx) {
    this.vertx = vertx;
    PoolMessages.registerCodecs(vertx.eventBus());
    caller = vertx.getOrCreateContext();
  }

  /** Lets every write through, then stops the pool: it must write what is left and mark a clean stop. */
  @AfterEach
  void stopCleanly(VertxTestContext test) {
    if (deployment == null) {
      test.completeNow();
      return;
    }
    store.answerAll(Answer.COMMIT);
    store.commitHeld();
    time.advance(PAST_RETRY_BACKOFF);
    vertx.undeploy(deployment).onComplete(test.succeeding(v -> test.verify(() -> {
      assertThat(store.stoppedCleanly()).as("the run is marked as stopped cleanly").isTrue();
      test.completeNow();
    })));
  }

  /** Deploys the pool with the defaults of {@code conf/config.json}, three tokens, and {@code overrides}. */
  private Future<PoolClient> deploy(JsonObject overrides) {
    JsonObject json;
    try {
      json = new JsonObject(Files.readString(Path.of("conf/config.json")));
    } catch (IOException e) {
      return Future.failedFuture(e);
    }
    AppConfig config = AppConfig.fromJson(json.put(AppConfig.POOL_SIZE, 3)
        .put(AppConfig.LEASE_TTL, TTL.toString())
        .put(AppConfig.ACK_TIMEOUT, ACK_TIMEOUT.toString())
        .put(AppConfig.MAX_LAG, MAX_LAG.toString())
        .put(AppConfig.FLUSH_INTERVAL, FLUSH_INTERVAL.toString())
        .mergeIn(overrides));
    Promise<PoolClient> deployed = Promise.promise();
    caller.runOnContext(v -> vertx.deployVerticle(new PoolVerticle(config, vx -> store, time, time::nanoTime))
        .onComplete(done -> caller.runOnContext(back -> {
          if (done.succeeded()) {
            deployment = done.result();
            deployed.complete(new PoolClient(vertx));
          } else {
            deployed.fail(done.cause());
          }
        })));
    return deployed.future();
  }

  /** The refusal a call ended with; a call that succeeds, or fails otherwise, fails the test. */
  private static Future<ApiException> refused(Future<?> call) {
    return call.transform(done -> done.failed() && done.cause() instanceof ApiException e
        ? Future.succeededFuture(e)
        : Future.failedFuture(new AssertionError("expected a refusal, got "
            + (done.succeeded() ? done.result() : done.cause()))));
  }

  private static PoolMessages.Activate activate(UUID user) {
    return new PoolMessages.Activate(user, null);
  }

  @Test
  @DisplayName("gives committed changes ids in commit order, (writer epoch << 32) + their number in the run, on tokens.events and to the live streams, and a restart continues above them")
  void changeIds(VertxTestContext test) {
    List<Long> published = new CopyOnWriteArrayList<>();
    List<CommittedChanges> handedOver = new CopyOnWriteArrayList<>();
    caller.runOnContext(v -> {
      vertx.eventBus().<JsonObject>consumer(PoolAddresses.EVENTS, message -> message.body().getJsonArray("changes")
          .forEach(change -> published.add(((JsonObject) change).getLong("id"))));
      vertx.eventBus().<CommittedChanges>localConsumer(PoolAddresses.COMMITTED, message -> handedOver.add(message.body()));
    });
    // The store's epoch is 6; each claim raises it.
    long firstRun = 7L << 32;
    deploy(new JsonObject()).compose(client -> client.activate(activate(UUID.randomUUID()))
            .compose(grant -> client.activate(activate(UUID.randomUUID())))
            .compose(grant -> client.status()))
        .compose(status -> {
          test.verify(() -> {
            assertThat(published).containsExactly(firstRun, firstRun + 1);
            assertThat(handedOver).extracting(CommittedChanges::firstId).containsExactly(firstRun, firstRun + 1);
            assertThat(handedOver.get(0).changes()).isEqualTo(store.committed().subList(0, 1));
            assertThat(status.nextChangeId()).isEqualTo(firstRun + 2);
          });
          String first = deployment;
          deployment = null;
          return vertx.undeploy(first);
        })
        .compose(v -> deploy(new JsonObject()))
        .compose(client -> client.activate(activate(UUID.randomUUID())).compose(grant -> client.status()))
        .onComplete(test.succeeding(status -> test.verify(() -> {
          assertThat(published).containsExactly(firstRun, firstRun + 1, 8L << 32);
          assertThat(status.nextChangeId()).isEqualTo((8L << 32) + 1);
          test.completeNow();
        })));
  }

  @Nested
  @DisplayName("in durable mode")
  class Durable {
    @Test
    @DisplayName("activates, renews and releases, each answer showing the token as the pool holds it, each change committed")
    void leaseLifecycle(VertxTestContext test) {
      UUID user = UUID.randomUUID();
      deploy(new JsonObject()).onComplete(test.succeeding(client -> client.activate(activate(user)).map(Grant::lease)
          .compose(grant -> {
            test.verify(() -> {
              assertThat(grant.state()).isEqualTo(TokenState.ACTIVE);
              assertThat(grant.currentUserId()).isEqualTo(user);
              assertThat(grant.generation()).isEqualTo(1);
              assertThat(grant.expiresAt()).isEqualTo(grant.activatedAt().plus(TTL));
            });
            time.advance(Duration.ofSeconds(30));
            return client.renew(new PoolMessages.Renew(TokenPool.DEFAULT, grant.tokenId(), user, grant.generation()))
                .compose(renewed -> {
                  test.verify(() -> assertThat(renewed.expiresAt())
                      .isEqualTo(grant.activatedAt().plusSeconds(30).plus(TTL)));
                  return refused(client.release(new PoolMessages.Release(TokenPool.DEFAULT, grant.tokenId(), UUID.randomUUID(), null)));
                })
                .compose(conflict -> {
                  test.verify(() -> {
                    assertThat(conflict.error()).isEqualTo(ErrorCode.CONFLICT);
                    assertThat(conflict.getMessage()).isEqualTo("Token is held by another user.");
                    assertThat(store.committed()).as("a refused request writes nothing").hasSize(2);
                  });
                  return client.release(new PoolMessages.Release(TokenPool.DEFAULT, grant.tokenId(), user, grant.generation()));
                });
          })
          .onComplete(test.succeeding(released -> test.verify(() -> {
            assertThat(released.state()).isEqualTo(TokenState.AVAILABLE);
            assertThat(released.currentUserId()).isNull();
            assertThat(store.committed()).extracting(PoolChange::kind)
                .containsExactly(PoolChange.Kind.GRANTED, PoolChange.Kind.RENEWED, PoolChange.Kind.ENDED);
            assertThat(store.committed().get(2).endReason()).isEqualTo(EndReason.RELEASED);
            test.completeNow();
          })))));
    }

    @Test
    @DisplayName("answers an activation only after the store has committed the batch holding it")
    void answersAfterCommit(VertxTestContext test) {
      Checkpoint heldUnanswered = test.checkpoint();
      Checkpoint answeredOnCommit = test.checkpoint();
      UUID user = UUID.randomUUID();
      store.answerAll(Answer.HOLD);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<TokenView> grant = client.activate(activate(user)).map(Grant::lease);
        // Handled after the activation; its answer comes back behind any answer the activation got.
        client.status().onComplete(test.succeeding(status -> test.verify(() -> {
          assertThat(grant.isComplete()).as("answered before the commit").isFalse();
          assertThat(status.active()).isEqualTo(1);
          assertThat(status.backlog()).isEqualTo(1);
          assertThat(store.writes()).hasSize(1);
          InMemoryPoolStore.Write write = store.writes().get(0);
          assertThat(write.changes).singleElement().satisfies(change -> {
            assertThat(change.kind()).isEqualTo(PoolChange.Kind.GRANTED);
            assertThat(change.userId()).isEqualTo(user);
          });
          assertThat(store.committed()).isEmpty();
          heldUnanswered.flag();
          write.commit();
        })));
        grant.onComplete(test.succeeding(view -> test.verify(() -> {
          assertThat(store.committed()).extracting(PoolChange::generation).containsExactly(view.generation());
          answeredOnCommit.flag();
        })));
      }));
    }

    @Test
    @DisplayName("answers a retry under an Idempotency-Key only once the grant it repeats is committed, writing nothing more")
    void retryWaitsForTheCommit(VertxTestContext test) {
      UUID user = UUID.randomUUID();
      store.answerAll(Answer.HOLD);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<Grant> first = client.activate(new PoolMessages.Activate(user, "order-17"));
        Future<Grant> retry = client.activate(new PoolMessages.Activate(user, "order-17"));
        client.status().onComplete(test.succeeding(status -> test.verify(() -> {
          assertThat(first.isComplete()).isFalse();
          assertThat(retry.isComplete()).as("the retry waits for the grant's commit").isFalse();
          assertThat(status.active()).isEqualTo(1);
          assertThat(store.writes()).hasSize(1);
          store.writes().get(0).commit();
        })));
        Future.all(first, retry).onComplete(test.succeeding(both -> test.verify(() -> {
          assertThat(retry.result().repeated()).isTrue();
          assertThat(retry.result().lease()).isEqualTo(first.result().lease());
          assertThat(store.committed()).singleElement()
              .satisfies(change -> assertThat(change.kind()).isEqualTo(PoolChange.Kind.GRANTED));
          test.completeNow();
        })));
      }));
    }

    @Test
    @DisplayName("refuses a retry whose grant the store refuses; the undone grant takes its Idempotency-Key with it")
    void retryOfARefusedGrant(VertxTestContext test) {
      UUID user = UUID.randomUUID();
      store.answerAll(Answer.HOLD);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<ApiException> undone = refused(client.activate(new PoolMessages.Activate(user, "order-17")));
        Future<ApiException> retry = refused(client.activate(new PoolMessages.Activate(user, "order-17")));
        client.status()
            .compose(status -> {
              store.writes().get(0).refuse();
              store.answerAll(Answer.REFUSE);
              return retry;
            })
            .compose(refusal -> {
              test.verify(() -> {
                assertThat(refusal.error()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(refusal.getMessage())
                    .isEqualTo("The database is not accepting writes (connection refused); try again shortly.");
              });
              time.advance(ACK_TIMEOUT);
              return undone;
            })
            .compose(refusal -> {
              store.answerAll(Answer.COMMIT);
              Future<InMemoryPoolStore.Write> retried = store.nextWrite();
              time.advance(PAST_RETRY_BACKOFF);
              return retried;
            })
            .compose(retried -> client.activate(new PoolMessages.Activate(user, "order-17")))
            .onComplete(test.succeeding(grant -> test.verify(() -> {
              assertThat(grant.repeated()).as("no key was left by the undone grant").isFalse();
              assertThat(store.committed()).extracting(PoolChange::generation)
                  .containsExactly(grant.lease().generation());
              test.completeNow();
            })));
      }));
    }

    @Test
    @DisplayName("undoes a change whose batch the store refuses: 503 at the ack timeout, and the next activation gets the same token")
    void refusedBatchIsUndone(VertxTestContext test) {
      UUID refusedUser = UUID.randomUUID();
      UUID nextUser = UUID.randomUUID();
      store.answerAll(Answer.REFUSE);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<ApiException> undone = refused(client.activate(activate(refusedUser)));
        refused(client.activate(activate(UUID.randomUUID())))
            .compose(atOnce -> {
              test.verify(() -> {
                assertThat(atOnce.error()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(atOnce.getMessage())
                    .isEqualTo("The database is not accepting writes (connection refused); try again shortly.");
                assertThat(undone.isComplete()).as("the first caller waits up to the ack timeout").isFalse();
              });
              time.advance(ACK_TIMEOUT);
              return undone;
            })
            .compose(refusal -> {
              test.verify(() -> {
                assertThat(refusal.error()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(refusal.retryAfterSeconds()).isEqualTo(1);
                assertThat(refusal.getMessage()).isEqualTo("The database did not confirm the change within 1000 ms"
                    + " (connection refused); nothing was changed. Try again shortly.");
              });
              return client.status();
            })
            .compose(status -> {
              test.verify(() -> {
                assertThat(status.active()).as("the grant is undone in memory").isZero();
                assertThat(status.available()).isEqualTo(3);
                assertThat(status.backlog()).isZero();
              });
              store.answerAll(Answer.COMMIT);
              Future<InMemoryPoolStore.Write> retried = store.nextWrite();
              time.advance(PAST_RETRY_BACKOFF);
              return retried;
            })
            .compose(retried -> client.activate(activate(nextUser)).map(Grant::lease))
            .onComplete(test.succeeding(grant -> test.verify(() -> {
              PoolChange refusedGrant = store.writes().get(0).changes.get(0);
              assertThat(refusedGrant.userId()).isEqualTo(refusedUser);
              assertThat(grant.tokenId()).as("the refused grant's token, free again and first in line")
                  .isEqualTo(refusedGrant.tokenId());
              assertThat(grant.usageCount()).as("the refused use is not counted").isEqualTo(1);
              assertThat(grant.generation()).as("generations stay used").isEqualTo(refusedGrant.generation() + 1);
              assertThat(store.committed()).extracting(PoolChange::userId).containsExactly(nextUser);
              test.completeNow();
            })));
      }));
    }

    @Test
    @DisplayName("refuses changes while writes lag TOKENS_PERSISTENCE_MAX_LAG behind, and takes them again once written")
    void refusesWhileWritesLag(VertxTestContext test) {
      store.answerAll(Answer.HOLD);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<TokenView> waiting = client.activate(activate(UUID.randomUUID())).map(Grant::lease);
        client.status()
            .compose(status -> {
              time.advance(MAX_LAG.plusMillis(100));
              return refused(client.activate(activate(UUID.randomUUID())));
            })
            .compose(lagging -> {
              test.verify(() -> {
                assertThat(lagging.error()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(lagging.getMessage()).isEqualTo("Writes to the database are 600 ms behind; try again shortly.");
                assertThat(waiting.isComplete()).as("a change already made keeps waiting for its commit").isFalse();
              });
              return client.status();
            })
            .compose(status -> {
              test.verify(() -> {
                assertThat(status.healthy()).isFalse();
                assertThat(status.writeLagMillis()).isEqualTo(600);
              });
              store.answerAll(Answer.COMMIT);
              store.commitHeld();
              return waiting;
            })
            .compose(granted -> client.activate(activate(UUID.randomUUID())).map(Grant::lease))
            .onComplete(test.succeeding(next -> test.verify(() -> {
              assertThat(next.generation()).as("the refused activation took no generation").isEqualTo(2);
              test.completeNow();
            })));
      }));
    }

    @Test
    @DisplayName("refuses changes while a batch may have been written unseen, and answers its caller once a retry shows it was")
    void refusesWhileInDoubt(VertxTestContext test) {
      UUID user = UUID.randomUUID();
      store.answerNext(Answer.LOSE_ANSWER);
      deploy(new JsonObject()).onComplete(test.succeeding(client -> {
        Future<TokenView> waiting = client.activate(activate(user)).map(Grant::lease);
        refused(client.activate(activate(UUID.randomUUID())))
            .compose(inDoubt -> {
              test.verify(() -> {
                assertThat(inDoubt.error()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(inDoubt.getMessage())
                    .isEqualTo("The database has not confirmed recent changes yet; try again shortly.");
                assertThat(waiting.isComplete()).isFalse();
              });
              time.advance(PAST_FIRST_BACKOFF);
              return waiting;
            })
            .compose(granted -> {
              test.verify(() -> {
                assertThat(granted.currentUserId()).isEqualTo(user);
                assertThat(store.writes()).extracting(write -> write.seq).containsExactly(41L, 41L);
                assertThat(store.committed()).extracting(PoolChange::userId).containsExactly(user);
              });
              return client.activate(activate(UUID.randomUUID())).map(Grant::lease);
            })
            .onComplete(test.succeedingThenComplete());
      }));
    }

    @Test
    @DisplayName("refuses every change while the instance lock is lost, and still answers reads")
    void refusesWithoutInstanceLock(VertxTestContext test) {
      store.loseInstanceLock();
      deploy(new JsonObject()).onComplete(test.succeeding(client -> refused(client.activate(activate(UUID.randomUUID())))
          .compose(refusal -> {
            test.verify(() -> {
              assertThat(refusal.error()).isEqualTo(ErrorCode.UNAVAILABLE);
              assertThat(refusal.getMessage()).isEqualTo(
                  "Lost the database session that makes this the only instance; changes wait until it is back.");
            });
            return client.list(new PoolMessages.ListTokens(TokenPool.DEFAULT, null));
          })
          .onComplete(test.succeeding(list -> test.verify(() -> {
            assertThat(list.tokens()).hasSize(3).allSatisfy(token -> assertThat(token.state()).isEqualTo(TokenState.AVAILABLE));
            assertThat(store.writes()).isEmpty();
            test.completeNow();
          })))));
    }
  }

  @Nested
  @DisplayName("in memory mode")
  class Memory {
    private final JsonObject memory = new JsonObject().put(AppConfig.ACK, "memory");

    @Test
    @DisplayName("answers at once, before anything is written, and writes the change within the flush interval")
    void answersAtOnce(VertxTestContext test) {
      UUID user = UUID.randomUUID();
      store.answerAll(Answer.HOLD);
      deploy(memory).onComplete(test.succeeding(client -> client.activate(activate(user)).map(Grant::lease)
          .compose(grant -> {
            test.verify(() -> {
              assertThat(grant.currentUserId()).isEqualTo(user);
              assertThat(store.writes()).as("nothing sent before the flush interval").isEmpty();
            });
            Future<InMemoryPoolStore.Write> flushed = store.nextWrite();
            time.advance(FLUSH_INTERVAL);
            return flushed.map(write -> {
              test.verify(() -> assertThat(write.changes).extracting(PoolChange::generation)
                  .containsExactly(grant.generation()));
              return write;
            });
          })
          .onComplete(test.succeeding(write -> {
            write.commit();
            test.completeNow();
          }))));
    }

    @Test
    @DisplayName("stops acknowledging once writes lag TOKENS_PERSISTENCE_MAX_LAG behind, until a fresh write is confirmed")
    void lagBoundsTheLossWindow(VertxTestContext test) {
      store.answerAll(Answer.HOLD);
      deploy(memory).onComplete(test.succeeding(client -> client.activate(activate(UUID.randomUUID())).map(Grant::lease)
          .compose(grant -> {
            Future<InMemoryPoolStore.Write> flushed = store.nextWrite();
            time.advance(FLUSH_INTERVAL);
            return flushed;
          })
          .compose(held -> {
            time.advance(MAX_LAG);
            return refused(client.activate(activate(UUID.randomUUID())));
          })
          .compose(lagging -> {
            test.verify(() -> {
              assertThat(lagging.error()).isEqualTo(ErrorCode.UNAVAILABLE);
              assertThat(lagging.getMessage()).isEqualTo("Writes to the database are 550 ms behind; try again shortly.");
            });
            // The held batch commits; the keep-alive that follows it is the fresh proof of life.
            store.answerAll(Answer.COMMIT);
            Future<InMemoryPoolStore.Write> proof = store.nextWrite();
            store.commitHeld();
            return proof;
          })
          .compose(proof -> {
            test.verify(() -> assertThat(proof.changes).isEmpty());
            return client.activate(activate(UUID.randomUUID())).map(Grant::lease);
          })
          .onComplete(test.succeeding(next -> test.verify(() -> {
            assertThat(next.generation()).isEqualTo(2);
            test.completeNow();
          })))));
    }

    @Test
    @DisplayName("answers a history read only once the changes answered before it are committed, so it shows them")
    void historyWaitsForPendingChanges(VertxTestContext test) {
      Checkpoint heldUnanswered = test.checkpoint();
      Checkpoint answeredOnCommit = test.checkpoint();
      UUID user = UUID.randomUUID();
      store.answerAll(Answer.HOLD);
      deploy(memory).onComplete(test.succeeding(client -> client.activate(activate(user)).map(Grant::lease)
          .onComplete(test.succeeding(grant -> {
            Future<InMemoryPoolStore.Write> flushed = store.nextWrite();
            Future<History.UserUsagePage> history = client.userUsages(new History.UserUsages(user, null, null, 50, null));
            flushed.compose(write -> client.status().map(status -> {
              test.verify(() -> assertThat(history.isComplete()).as("read before the commit").isFalse());
              heldUnanswered.flag();
              write.commit();
              return write;
            }));
            history.onComplete(test.succeeding(page -> test.verify(() -> {
              assertThat(page.usages()).singleElement().satisfies(usage -> {
                assertThat(usage.generation()).isEqualTo(grant.generation());
                assertThat(usage.tokenId()).isEqualTo(grant.tokenId());
                assertThat(usage.endedAt()).isNull();
              });
              answeredOnCommit.flag();
            })));
          }))));
    }
  }

  /** Wall and monotonic time that only the test moves, together; read on the pool's event loop. */
  private static final class TestTime extends Clock {
    private static final Instant START = Instant.parse("2025-12-19T15:12:02Z");
    private final AtomicLong elapsedNanos = new AtomicLong();

    void advance(Duration duration) {
      elapsedNanos.addAndGet(duration.toNanos());
    }

    long nanoTime() {
      return 1_000_000_000L + elapsedNanos.get();
    }

    @Override
    public Instant instant() {
      return START.plusNanos(elapsedNanos.get());
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      throw new UnsupportedOperationException();
    }
  }
}
