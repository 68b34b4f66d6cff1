package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.lease.core.TokenState;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.json.JsonObject;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * What crossing to the pool verticle costs, both ways, against the real pool in one process: a
 * plain request/reply ({@code EventBus.request} with a record and the local codec) and the pool's
 * direct-completion call ({@link PoolClient}: the request travels on the bus, the answer completes
 * the caller's promise on its context, no reply address or timeout timer). Rounds alternate so both
 * see the same machine; each keeps {@link #IN_FLIGHT} reads of one token outstanding.
 */
public final class CrossingRate {
  /** Calls per second of each way, and their ratio (direct / request-reply). */
  public record Result(double requestReply, double direct) {
    public double ratio() {
      return direct / requestReply;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "request/reply %.0f calls/s, direct completion %.0f calls/s, ratio %.2f",
          requestReply, direct, ratio());
    }
  }

  private static final int IN_FLIGHT = 256;
  private static final int ROUNDS = 4;
  private static final long ROUND_MS = 1_500;

  private CrossingRate() {}

  public static Result measure() throws Exception {
    String database = TestDatabase.create();
    try (RunningService service = RunningService.start(database, new JsonObject()
        .put("TOKENS_PERSISTENCE_ACK", "memory").put("TOKENS_POOL_SIZE", 100))) {
      Driver driver = new Driver();
      service.vertx().deployVerticle(driver).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      double[] sums = new double[2];
      for (int round = 0; round < ROUNDS * 2; round++) {
        boolean direct = round % 2 == 1;
        double rate = driver.round(direct).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        if (round >= 2) { // the first pair warms up
          sums[direct ? 1 : 0] += rate;
        }
      }
      return new Result(sums[0] / (ROUNDS - 1), sums[1] / (ROUNDS - 1));
    } finally {
      TestDatabase.drop(database);
    }
  }

  /** Runs the calls from its own event loop, as an HTTP verticle would. */
  private static final class Driver extends VerticleBase {
    private PoolClient client;
    private UUID tokenId;

    @Override
    public Future<?> start() {
      client = new PoolClient(vertx);
      return client.list(new PoolMessages.ListTokens(TokenPool.DEFAULT, TokenState.AVAILABLE))
          .onSuccess(list -> tokenId = list.tokens().get(0).tokenId());
    }

    Future<Double> round(boolean direct) {
      Promise<Double> done = Promise.promise();
      context.runOnContext(v -> {
        PoolMessages.GetToken request = new PoolMessages.GetToken(TokenPool.DEFAULT, tokenId);
        Function<PoolMessages.GetToken, Future<?>> call = direct ? client::get
            : r -> vertx.eventBus().request(PoolAddresses.GET, r);
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ROUND_MS);
        long start = System.nanoTime();
        long[] completed = {0};
        int[] outstanding = {0};
        Runnable[] next = new Runnable[1];
        next[0] = () -> {
          outstanding[0]++;
          call.apply(request).onComplete(ar -> {
            outstanding[0]--;
            if (ar.failed()) {
              done.tryFail(ar.cause());
              return;
            }
            completed[0]++;
            if (System.nanoTime() < end) {
              next[0].run();
            } else if (outstanding[0] == 0) {
              done.tryComplete(completed[0] / ((System.nanoTime() - start) / 1e9));
            }
          });
        };
        for (int i = 0; i < IN_FLIGHT; i++) {
          next[0].run();
        }
      });
      return done.future();
    }
  }

  public static void main(String[] args) throws Exception {
    System.out.println(measure());
    System.exit(0);
  }
}
