package dev.tokenlease.platform;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Request/reply between two verticles: answers and refusals arrive intact, on the caller's context. */
@DisplayName("LocalBus")
@ExtendWith(VertxExtension.class)
class LocalBusTest {
  private record Ask(String what) {}

  private record Told(String what, Context answeredOn) {}

  /** Answers "hello" with a record, "refuse" with a named 409, "throw" by throwing one, "break" with a bug. */
  private static final class Owner extends VerticleBase {
    @Override
    public Future<?> start() {
      return LocalBus.serve(vertx.eventBus(), "test.ask", (Ask ask) -> switch (ask.what()) {
        case "hello" -> Future.succeededFuture(new Told("hi", vertx.getOrCreateContext()));
        case "refuse" -> Future.failedFuture(new ApiException(ErrorCode.CONFLICT, "Taken.", 7).named("TAKEN", "held"));
        case "throw" -> throw new ApiException(ErrorCode.BAD_REQUEST, "Bad ask.");
        case "crash" -> throw new IllegalStateException("crashed");
        default -> Future.failedFuture(new IllegalStateException("broken"));
      }).completion();
    }
  }

  /** Sends from its own event loop, as an HTTP verticle would. */
  private static final class Caller extends VerticleBase {
    Context own() {
      return context;
    }

    Future<Object> ask(String what, AtomicReference<Context> completedOn) {
      return Future.<Future<Object>>future(p -> context.runOnContext(v -> p.complete(
              LocalBus.<Object>request(vertx.eventBus(), "test.ask", new Ask(what))
                  .andThen(done -> completedOn.set(Vertx.currentContext())))))
          .compose(f -> f);
    }
  }

  private static Future<Caller> deploy(Vertx vertx) {
    LocalRecordCodec.registerAll(vertx.eventBus(), Ask.class, Told.class);
    Caller caller = new Caller();
    return vertx.deployVerticle(new Owner()).compose(id -> vertx.deployVerticle(caller)).map(caller);
  }

  @Test
  @DisplayName("an answer is the owner's object, handled on the owner's loop, completed on the caller's")
  void answers(Vertx vertx, VertxTestContext test) {
    AtomicReference<Context> completedOn = new AtomicReference<>();
    deploy(vertx).compose(caller -> caller.ask("hello", completedOn).map(answer -> {
      test.verify(() -> {
        assertThat(answer).isInstanceOf(Told.class);
        Told told = (Told) answer;
        assertThat(told.what()).isEqualTo("hi");
        assertThat(told.answeredOn()).isNotSameAs(completedOn.get());
        assertThat(completedOn.get()).isSameAs(caller.own());
      });
      return answer;
    })).onComplete(test.succeedingThenComplete());
  }

  @Test
  @DisplayName("a refusal arrives as the same ApiException: status, code, detail and Retry-After")
  void refusals(Vertx vertx, VertxTestContext test) {
    deploy(vertx).compose(caller -> caller.ask("refuse", new AtomicReference<>())).onComplete(test.failing(e ->
        test.verify(() -> {
          assertThat(e).isInstanceOf(ApiException.class);
          ApiException refusal = (ApiException) e;
          assertThat(refusal.error()).isEqualTo(ErrorCode.CONFLICT);
          assertThat(refusal.getMessage()).isEqualTo("Taken.");
          assertThat(refusal.code()).isEqualTo("TAKEN");
          assertThat(refusal.reason()).isEqualTo("held");
          assertThat(refusal.retryAfterSeconds()).isEqualTo(7);
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("a handler that throws its refusal is answered the same way")
  void thrownRefusals(Vertx vertx, VertxTestContext test) {
    deploy(vertx).compose(caller -> caller.ask("throw", new AtomicReference<>())).onComplete(test.failing(e ->
        test.verify(() -> {
          assertThat(e).isInstanceOf(ApiException.class);
          assertThat(((ApiException) e).error()).isEqualTo(ErrorCode.BAD_REQUEST);
          assertThat(e.getMessage()).isEqualTo("Bad ask.");
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("an unexpected failure is a 500 ReplyException that names it, never a refusal nor a timeout")
  void bugs(Vertx vertx, VertxTestContext test) {
    deploy(vertx).compose(caller -> caller.ask("break", new AtomicReference<>())).onComplete(test.failing(e ->
        test.verify(() -> {
          assertThat(e).isInstanceOf(ReplyException.class).isNotInstanceOf(ApiException.class);
          assertThat(((ReplyException) e).failureType()).isEqualTo(io.vertx.core.eventbus.ReplyFailure.RECIPIENT_FAILURE);
          assertThat(((ReplyException) e).failureCode()).isEqualTo(500);
          assertThat(e.getMessage()).isEqualTo("Failed to process request: broken");
          test.completeNow();
        })));
  }

  @Test
  @DisplayName("a handler that throws something else is answered 500 at once, not left to time out")
  void crashes(Vertx vertx, VertxTestContext test) {
    deploy(vertx).compose(caller -> caller.ask("crash", new AtomicReference<>())).onComplete(test.failing(e ->
        test.verify(() -> {
          assertThat(e).isInstanceOf(ReplyException.class);
          assertThat(((ReplyException) e).failureType()).isEqualTo(io.vertx.core.eventbus.ReplyFailure.RECIPIENT_FAILURE);
          assertThat(e.getMessage()).isEqualTo("Failed to process request: crashed");
          test.completeNow();
        })));
  }
}
