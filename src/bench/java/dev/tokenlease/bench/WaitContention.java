package dev.tokenlease.bench;

import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Activation on a named pool with {@code overflow: wait} under contention: more connections than
 * tokens, each in a closed loop of activate (waiting its turn) and release at once (wrk, {@link
 * Wrk#waitCycleScript}). Reports the cycles per second (two requests each), the failures, and the
 * wait times the pool itself recorded ({@code wait_ms} of its stats). The same loop on a pool with a
 * token for every connection is the baseline: what the cycle costs without waiting.
 */
final class WaitContention {
  private WaitContention() {}

  /** @param waitP50 the pool's own figures ({@code wait_ms}), in ms */
  record Result(String ack, int tokens, int clients, double cyclesPerSecond, long failed, long waitP50, long waitP99,
      long waitMax, long timedOut) {}

  /** Creates the pool {@code name} and runs the loops against it, after a warm-up. */
  static Result run(String ack, int port, String name, int tokens, int clients, Duration warmup, Duration duration,
      Path scripts) throws Exception {
    Http http = new Http(port);
    JsonObject pool = new JsonObject().put("name", name).put("size", tokens).put("lease_ttl", "PT1M")
        .put("overflow", "wait").put("max_wait", "PT30S");
    Http.Response created = http.post("/api/pools", pool.encode());
    if (created.status() != 201) {
      throw new IllegalStateException("cannot create the bench pool: " + created);
    }
    Path script = Files.writeString(scripts.resolve("wait-" + name + ".lua"), Wrk.waitCycleScript(name));
    Wrk.run(port, script, warmup, 2, clients);
    // Wait times since the start include the warm-up's: a fresh pool of the same shape is measured.
    String measured = name + "-m";
    http.post("/api/pools", pool.put("name", measured).encode());
    script = Files.writeString(scripts.resolve("wait-" + measured + ".lua"), Wrk.waitCycleScript(measured));
    Wrk.Result result = Wrk.run(port, script, duration, 2, clients);
    JsonObject stats = http.get("/api/pools/" + measured + "/stats").json();
    JsonObject waits = stats.getJsonObject("wait_ms");
    return new Result(ack, tokens, clients, result.goodput() / 2, result.failures(), waits.getLong("p50"),
        waits.getLong("p99"), waits.getLong("max"), stats.getJsonObject("counters").getLong("timed_out"));
  }
}
