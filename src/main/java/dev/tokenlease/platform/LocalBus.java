package dev.tokenlease.platform;

import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one way verticles of this process call each other: request/reply over the local event bus,
 * one address per operation, with records passed by reference ({@link LocalRecordCodec}). A
 * refusal travels as the {@link ApiException} itself, so its code, detail and {@code Retry-After}
 * arrive intact. The owning verticle answers on its own event loop; the caller's future completes
 * on the caller's context.
 *
 * <p>Only the token pool, called for every lease request, skips the reply message (its client
 * completes the caller's promise directly; see {@code PoolClient}): measured in the benchmark's
 * {@code crossing} row.
 */
public final class LocalBus {
  private static final Logger LOG = LoggerFactory.getLogger(LocalBus.class);

  /** An {@link ApiException} on its way back to the caller (ReplyExceptions go by reference locally). */
  private static final class Refused extends ReplyException {
    final ApiException refusal;

    Refused(ApiException refusal) {
      super(ReplyFailure.RECIPIENT_FAILURE, refusal.error().code(), refusal.getMessage());
      this.refusal = refusal;
    }
  }

  private LocalBus() {}

  /** Answers {@code address} on the calling verticle's event loop with {@code handler}. */
  public static <Q, R> MessageConsumer<Q> serve(EventBus bus, String address, Function<Q, Future<R>> handler) {
    return bus.<Q>localConsumer(address, msg -> {
      Future<R> result;
      try {
        result = handler.apply(msg.body());
      } catch (RuntimeException e) {
        // A refusal thrown rather than returned, or a bug: either way the caller gets an answer now.
        result = Future.failedFuture(e);
      }
      reply(msg, result);
    });
  }

  /**
   * Replies with the outcome: the value, or the refusal as raised. Anything else (a database error,
   * a bug) is logged here and arrives as a plain {@link ReplyException} with code 500, so that each
   * API can still tell "refused" from "could not be done" (the OAuth endpoints answer the latter 503).
   */
  public static void reply(Message<?> msg, Future<?> outcome) {
    outcome.onComplete(done -> {
      if (done.succeeded()) {
        msg.reply(done.result());
      } else if (done.cause() instanceof ApiException e) {
        msg.reply(new Refused(e));
      } else {
        Throwable cause = done.cause();
        LOG.warn("{} failed: {}", msg.address(), cause.toString());
        msg.fail(ErrorCode.INTERNAL.code(), "Failed to process request: "
            + (cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage()));
      }
    });
  }

  /**
   * Sends {@code request} to {@code address}; fails with the owner's {@link ApiException} when it
   * refuses, or with a {@link ReplyException} when it could not answer (code 500) or is not there.
   */
  public static <R> Future<R> request(EventBus bus, String address, Object request) {
    return request(bus, address, request, new io.vertx.core.eventbus.DeliveryOptions());
  }

  /** As {@link #request(EventBus, String, Object)}, with these delivery options (a timeout, local only). */
  public static <R> Future<R> request(EventBus bus, String address, Object request,
      io.vertx.core.eventbus.DeliveryOptions options) {
    return bus.<R>request(address, request, options).transform(done -> {
      if (done.succeeded()) {
        return Future.succeededFuture(done.result().body());
      }
      Throwable cause = done.cause();
      return Future.failedFuture(cause instanceof Refused refused ? refused.refusal : cause);
    });
  }
}
