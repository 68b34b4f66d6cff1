package dev.tokenlease.lease.bus;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.Checkpoint;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

/** The JSON event-bus API that verticles in the same Vert.x instance or cluster use instead of HTTP. */
@ExtendWith(VertxExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("Event-bus API")
class EventBusApiTest {
  private String database;
  private RunningService service;
  private EventBus bus;

  @BeforeAll
  void start() throws Exception {
    database = TestDatabase.create();
    service = RunningService.start(database, new JsonObject().put("TOKENS_POOL_SIZE", 5));
    bus = service.vertx().eventBus();
  }

  @AfterAll
  void stop() {
    if (service != null) {
      service.close();
    }
    TestDatabase.drop(database);
  }

  @Test
  @DisplayName("activate, get, renew and release take and give the HTTP bodies as JSON")
  void leaseOverTheBus(VertxTestContext test) {
    String user = UUID.randomUUID().toString();
    bus.<JsonObject>request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", user))
        .compose(grant -> {
          test.verify(() -> {
            assertThat(grant.body().getString("user_id")).isEqualTo(user);
            assertThat(grant.body().getLong("generation")).isPositive();
          });
          JsonObject lease = new JsonObject().put("token_id", grant.body().getString("token_id")).put("user_id", user);
          return bus.<JsonObject>request(PoolAddresses.JSON_GET, lease)
              .compose(token -> {
                test.verify(() -> assertThat(token.body().getString("state")).isEqualTo("active"));
                return bus.<JsonObject>request(PoolAddresses.JSON_RENEW, lease);
              })
              .compose(renewed -> bus.<JsonObject>request(PoolAddresses.JSON_RELEASE, lease))
              .compose(released -> {
                test.verify(() -> assertThat(released.body().getString("state")).isEqualTo("available"));
                return bus.<JsonObject>request(PoolAddresses.JSON_USER_USAGES, new JsonObject().put("user_id", user));
              });
        })
        .onComplete(test.succeeding(history -> test.verify(() -> {
          assertThat(history.body().getJsonArray("usages")).hasSize(1);
          assertThat(history.body().getJsonArray("usages").getJsonObject(0).getString("end_reason")).isEqualTo("released");
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("activate takes an idempotency_key: a retry answers the same lease, another user gets 422, a bad key 400")
  void idempotentActivation(VertxTestContext test) {
    String user = UUID.randomUUID().toString();
    JsonObject request = new JsonObject().put("user_id", user).put("idempotency_key", "bus-" + UUID.randomUUID());
    bus.<JsonObject>request(PoolAddresses.JSON_ACTIVATE, request)
        .compose(first -> bus.<JsonObject>request(PoolAddresses.JSON_ACTIVATE, request)
            .map(retry -> {
              test.verify(() -> assertThat(retry.body()).isEqualTo(first.body()));
              return retry;
            }))
        .compose(retry -> bus.request(PoolAddresses.JSON_ACTIVATE,
            request.copy().put("user_id", UUID.randomUUID().toString())).transform(done -> {
              test.verify(() -> {
                assertThat(((ReplyException) done.cause()).failureCode()).isEqualTo(422);
                assertThat(done.cause().getMessage()).isEqualTo("Idempotency-Key was used by another user.");
              });
              return bus.request(PoolAddresses.JSON_ACTIVATE, request.copy().put("idempotency_key", 17));
            }))
        .onComplete(test.failing(bad -> test.verify(() -> {
          assertThat(((ReplyException) bad).failureCode()).isEqualTo(400);
          assertThat(bad.getMessage()).isEqualTo("Invalid idempotency_key. Must be 1 to 255 visible ASCII characters.");
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("failures arrive as ReplyException with the HTTP status as code and the same message")
  void failures(VertxTestContext test) {
    bus.request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", "nope"))
        .onComplete(test.failing(error -> test.verify(() -> {
          assertThat(error).isInstanceOf(ReplyException.class);
          assertThat(((ReplyException) error).failureCode()).isEqualTo(400);
          assertThat(error.getMessage()).isEqualTo("Invalid user_id format. Must be a valid UUID.");
          bus.request(PoolAddresses.JSON_GET, new JsonObject().put("token_id", new UUID(0, 0).toString()))
              .onComplete(test.failing(notFound -> test.verify(() -> {
                assertThat(((ReplyException) notFound).failureCode()).isEqualTo(404);
                bus.request(PoolAddresses.JSON_LIST, "not json")
                    .onComplete(test.failing(bad -> test.verify(() -> {
                      assertThat(((ReplyException) bad).failureCode()).isEqualTo(400);
                      test.completeNow();
                    })));
              })));
        })));
  }

  @Test
  @DisplayName("every change is published on tokens.events once it is committed")
  void events(VertxTestContext test) {
    String user = UUID.randomUUID().toString();
    var consumer = bus.<JsonObject>consumer(PoolAddresses.EVENTS);
    consumer.handler(message -> {
      for (Object item : message.body().getJsonArray("changes")) {
        JsonObject event = (JsonObject) item;
        if (user.equals(event.getString("user_id")) && "granted".equals(event.getString("type"))) {
          test.verify(() -> {
            assertThat(event.getLong("generation")).isPositive();
            assertThat(event.getLong("id")).as("the change's id, as on GET /api/events").isPositive();
            assertThat(event.getString("started_at")).isNotNull();
            assertThat(event.getValue("ended_at")).isNull();
            // Published after the commit: the usage is already readable.
            TestDatabase.execute(database, "SELECT 1 FROM usages WHERE generation = " + event.getLong("generation"));
          });
          consumer.unregister();
          test.completeNow();
        }
      }
    });
    consumer.completion().onSuccess(v -> bus.request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", user)));
  }

  @Test
  @DisplayName("an eviction is published as an evicted change naming the evicted holder, and answered with it")
  void evictionEvent(VertxTestContext test) {
    String evictedUser = UUID.randomUUID().toString();
    Checkpoint publishedAndAnswered = test.checkpoint(2);
    var consumer = bus.<JsonObject>consumer(PoolAddresses.EVENTS);
    consumer.handler(message -> {
      for (Object item : message.body().getJsonArray("changes")) {
        JsonObject event = (JsonObject) item;
        if ("evicted".equals(event.getString("type")) && evictedUser.equals(event.getString("user_id"))) {
          test.verify(() -> assertThat(event.getString("ended_at")).isNotNull());
          consumer.unregister();
          publishedAndAnswered.flag();
        }
      }
    });
    Future<JsonObject> evicting = consumer.completion()
        .compose(v -> bus.request(PoolAddresses.JSON_CLEAR, new JsonObject()))
        .compose(v -> bus.<JsonObject>request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", evictedUser)))
        .map(Message::body);
    // Pool of 5: four more fill it, the fifth evicts the oldest lease.
    for (int i = 0; i < 5; i++) {
      evicting = evicting.compose(previous -> bus.<JsonObject>request(PoolAddresses.JSON_ACTIVATE,
          new JsonObject().put("user_id", UUID.randomUUID().toString())).map(Message::body));
    }
    evicting.onComplete(test.succeeding(grant -> test.verify(() -> {
      assertThat(grant.getJsonObject("evicted").getString("user_id")).isEqualTo(evictedUser);
      publishedAndAnswered.flag();
    })));
  }
}
