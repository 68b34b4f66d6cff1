package dev.tokenlease.bench;

import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.lease.core.PoolSnapshot;
import dev.tokenlease.lease.core.TokenPool;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.ServiceProcess;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.HdrHistogram.Histogram;

/**
 * Measures, in one run on one machine, activation throughput and latency of the service against
 * the ceiling of its HTTP stack and against the seed's database-locking design, then a mixed load
 * and pool sizes up to a million tokens. Every server runs as its own process, started and stopped
 * here; load comes from wrk (closed loop, maximum throughput) and from {@link OpenLoopLoad} at half
 * of each server's maximum (latency, corrected for coordinated omission).
 *
 * <p>Run: {@code mvn -B -Pbench -DskipTests package} (add {@code -Dbench.args=--quick} for the short
 * run; {@code --only=memory,durable} for some scenarios). Results: a table on stdout and
 * {@code target/bench/bench.md}, {@code .json}.
 */
public final class Benchmark {
  /** {@code serverJvm}: options added to the service's {@code java -jar} (from {@code --server-jvm=a,b}), for tuning. */
  private record Settings(Duration warmup, Duration closed, Duration open, List<Integer> poolSizes, String name,
      List<String> only, List<String> serverJvm) {
    boolean runs(String scenario) {
      return only.isEmpty() || only.contains(scenario);
    }
  }

  private record Scenario(String name, String description, int connections, double maxRps, long failures,
      double halfRate, double halfAchieved, double p50, double p99, double p999, long halfErrors,
      Pauses.Seen servicePauses, Pauses.Seen generatorPauses) {}

  private record Scale(int tokens, double rps, double coreOpsPerSecond, long heapUsedBytes, double heapBytesPerToken,
      double firstStartSeconds, double restartSeconds) {}

  private static final int WRK_THREADS = 2;
  private static final int CONNECTIONS = 64;
  private static final int DBLOCK_CONNECTIONS = 8;

  private final Settings settings;
  private final Path out = Path.of("target", "bench");
  private final int cores = Runtime.getRuntime().availableProcessors();
  private final List<Scenario> scenarios = new ArrayList<>();
  private final List<Scale> scales = new ArrayList<>();
  private double bearerChecksPerSecond = Double.NaN;
  private dev.tokenlease.lease.bus.CrossingRate.Result crossing;
  private final List<WaitContention.Result> waits = new ArrayList<>();
  /** The safepoint log of the server listening on each port, for the pauses seen during a scenario. */
  private final Map<Integer, Pauses> pausesByPort = new HashMap<>();
  /** This process's own pauses (the load generator's), when the JVM was started to log them (see pom.xml). */
  private final Pauses generatorPauses = new Pauses(Path.of("target", "bench-generator-safepoints.log"));
  private RedissonPeer.Result redisson;

  private Benchmark(Settings settings) {
    this.settings = settings;
  }

  public static void main(String[] args) throws Exception {
    List<String> words = new ArrayList<>();
    for (String arg : args) {
      words.addAll(List.of(arg.trim().split("\\s+")));
    }
    boolean quick = words.contains("--quick") || words.contains("quick");
    // Warm-up: on two cores the JIT compilers take a while over the service's hot paths (a service's
    // C2 threads had used 11.7 s of CPU after about 40 s of load); measuring earlier measures them too.
    // --only=noop,memory,durable,redisson,auth,crossing,dblock,wait,mixed,cluster,scale runs a subset (while tuning); the default runs all.
    List<String> only = words.stream().filter(w -> w.startsWith("--only="))
        .flatMap(w -> List.of(w.substring(7).split(",")).stream()).toList();
    // --server-jvm=-Xms2g,-Xmn1g adds JVM options to the service's launches (the report names them).
    List<String> serverJvm = words.stream().filter(w -> w.startsWith("--server-jvm="))
        .flatMap(w -> List.of(w.substring(13).split(",")).stream()).filter(o -> !o.isBlank()).toList();
    Settings settings = quick
        ? new Settings(Duration.ofSeconds(10), Duration.ofSeconds(6), Duration.ofSeconds(5), List.of(100, 10_000, 1_000_000), "quick", only, serverJvm)
        : new Settings(Duration.ofSeconds(15), Duration.ofSeconds(20), Duration.ofSeconds(15), List.of(100, 10_000, 1_000_000), "full", only, serverJvm);
    Instant started = Instant.now();
    Benchmark bench = new Benchmark(settings);
    bench.run();
    bench.report(Duration.between(started, Instant.now()));
    System.exit(0);
  }

  private void run() throws Exception {
    Files.createDirectories(out);
    Path activate = write("activate.lua", Wrk.activateScript());
    if (settings.runs("noop")) {
      noop(activate);
    }
    for (String ack : List.of("memory", "durable")) {
      if (settings.runs(ack)) {
        activation(ack, activate);
      }
    }
    if (settings.runs("redisson")) {
      redisson();
    }
    if (settings.runs("auth")) {
      authenticated();
    }
    if (settings.runs("crossing")) {
      log("crossing to the pool verticle: request/reply against direct completion, in one process");
      crossing = dev.tokenlease.lease.bus.CrossingRate.measure();
      log("  " + crossing);
    }
    if (settings.runs("dblock")) {
      dblock(activate);
    }
    if (settings.runs("wait")) {
      waiting();
    }
    if (settings.runs("mixed")) {
      mixed();
    }
    if (settings.runs("cluster")) {
      cluster(activate);
    }
    if (settings.runs("scale")) {
      for (int size : settings.poolSizes()) {
        scale(size, activate);
      }
    }
  }

  private void noop(Path activate) throws Exception {
    log("ceiling: no-op route on the same HTTP stack");
    try (Child noop = child("noop", List.of())) {
      scenarios.add(measure("noop", "no-op route, same stack, same reply size", noop.port(), activate, this::activation));
    }
  }

  private void activation(String ack, Path activate) throws Exception {
    log("activate, " + ack + " acknowledgments, pool of 100 (full: every activation evicts)");
    String database = TestDatabase.create();
    settle();
    try (ServiceProcess service = launch(ack, Map.of("TOKENS_PG_URL", database,
        "TOKENS_PERSISTENCE_ACK", ack, "TOKENS_POOL_SIZE", "100")).awaitReady(Duration.ofSeconds(120))) {
      scenarios.add(measure(ack, "activate, " + ack + " ack, pool full", service.port(), activate, this::activation));
      if (ack.equals("durable")) {
        // The group-commit curve: fewer and more callers in flight than the default 64.
        for (int connections : List.of(16, 256)) {
          awaitWritesDrained(service.port());
          scenarios.add(measure("durable-c" + connections, "activate, durable ack, pool full, " + connections
              + " connections", service.port(), activate, this::activation, connections));
        }
      }
      service.terminate(Duration.ofSeconds(60));
    } finally {
      TestDatabase.drop(database);
    }
  }

  /** The peer: Redisson's expirable semaphore on the local Redis, with the pool's permits and lease time. */
  private void redisson() throws Exception {
    log("peer: Redisson RPermitExpirableSemaphore (100 permits, lease PT2M) on Redis at 127.0.0.1:6379, "
        + CONNECTIONS + " async loops of acquire + release");
    if (!RedissonPeer.reachable("127.0.0.1", 6379)) {
      log("  skipped: no Redis answers at 127.0.0.1:6379");
      return;
    }
    redisson = RedissonPeer.run("127.0.0.1", 6379, 100, Duration.ofMinutes(2), CONNECTIONS, settings.warmup(),
        settings.closed());
    log(String.format(Locale.ROOT, "  redisson: %.0f lease + release cycles/s (%d failed), cycle p50 %.2f ms p99 %.2f ms",
        redisson.cyclesPerSecond(), redisson.failed(), redisson.p50Millis(), redisson.p99Millis()));
  }

  /**
   * Activations with TOKENS_AUTH_REQUIRED=true: every request carries a bearer token that the
   * service checks in memory (hash + lookup) and for scope; compared with the memory scenario.
   */
  private void authenticated() throws Exception {
    log("activate, memory acknowledgments, with a bearer token on every request");
    String database = TestDatabase.create();
    String secret = UUID.randomUUID() + "-" + UUID.randomUUID();
    Map<String, String> env = new HashMap<>(serviceEnv(database, "memory", 100));
    env.put("TOKENS_AUTH_REQUIRED", "true");
    env.put("TOKENS_ADMIN_CLIENT_ID", "bench-admin");
    env.put("TOKENS_ADMIN_CLIENT_SECRET", secret);
    bearerChecksPerSecond = dev.tokenlease.m2m.BearerCheckRate.measure(1000);
    log(String.format(Locale.ROOT, "  bearer check alone (hash + lookup, 1000 live tokens): %.0f checks/s on one thread",
        bearerChecksPerSecond));
    settle();
    try (ServiceProcess service = launch("auth", env).awaitReady(Duration.ofSeconds(120))) {
      String basic = java.util.Base64.getEncoder().encodeToString(("bench-admin:" + secret).getBytes());
      Http.Response issued = service.http().request("POST", "/oauth/token", "grant_type=client_credentials&scope=tokens:write",
          "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic " + basic);
      if (issued.status() != 200) {
        throw new IllegalStateException("cannot get a bench access token: " + issued);
      }
      String token = issued.json().getString("access_token");
      Path script = write("activate-auth.lua", Wrk.authenticatedActivateScript(token));
      Supplier<OpenLoopLoad.Call> calls = () -> new OpenLoopLoad.Call(HttpMethod.POST, "/api/tokens/activate",
          Buffer.buffer("{\"user_id\":\"" + UUID.randomUUID() + "\"}"), "Bearer " + token);
      scenarios.add(measure("auth", "activate, memory ack, bearer token checked per request", service.port(), script, calls));
      service.terminate(Duration.ofSeconds(60));
    } finally {
      TestDatabase.drop(database);
    }
  }

  /**
   * Lets PostgreSQL write out what the previous scenario left (a checkpoint) so that a scenario
   * does not pay for its predecessor's writes.
   */
  private static void settle() throws InterruptedException {
    TestDatabase.execute(TestDatabase.adminUrl(), "CHECKPOINT");
    Thread.sleep(1_000);
  }

  /**
   * Starts the packaged service as the README does ({@code java -jar}, the JDK's default collector and
   * heap unless {@code --server-jvm} says otherwise), adding a log of its pauses, {@code <label>-safepoints.log}.
   */
  private ServiceProcess launch(String label, Map<String, String> env) throws IOException {
    Pauses pauses = pauseLog(label);
    List<String> options = new ArrayList<>(settings.serverJvm());
    options.add(pauses.option());
    ServiceProcess service = ServiceProcess.launch(env, options);
    pausesByPort.put(service.port(), pauses);
    return service;
  }

  /** Starts a bench server ({@link BenchServer}), logging its pauses as {@link #launch} does. */
  private Child child(String mode, List<String> extra) throws Exception {
    Pauses pauses = pauseLog(mode);
    Child child = Child.benchServer(mode, extra, pauses);
    pausesByPort.put(child.port(), pauses);
    return child;
  }

  /** A fresh pause log for one server process, {@code <label>-safepoints.log}. */
  private Pauses pauseLog(String label) throws IOException {
    Path log = out.toAbsolutePath().resolve(label + "-safepoints.log");
    Files.deleteIfExists(log);
    return new Pauses(log);
  }

  private void dblock(Path activate) throws Exception {
    log("baseline: one PostgreSQL transaction with row locks per activation");
    String dblockDb = TestDatabase.create();
    try (Child dblock = child("dblock", List.of(dblockDb, "100", Integer.toString(DBLOCK_CONNECTIONS)))) {
      scenarios.add(measure("dblock", "seed design: FOR UPDATE SKIP LOCKED per activation, "
          + DBLOCK_CONNECTIONS + " connections", dblock.port(), activate, this::activation));
    } finally {
      TestDatabase.drop(dblockDb);
    }
  }

  /**
   * Named pools with overflow wait, wrk's connections activating and releasing in closed loops, in
   * each acknowledgment mode: a quarter as many tokens as connections (most activations wait their
   * turn) against one per connection (none waits), measured in the same service.
   */
  private void waiting() throws Exception {
    for (String ack : List.of("memory", "durable")) {
      log("wait: named pools with overflow wait, " + CONNECTIONS + " connections in closed loops, " + ack + " acknowledgments");
      String database = TestDatabase.create();
      settle();
      try (ServiceProcess service = ServiceProcess.launch(serviceEnv(database, ack, 100))
          .awaitReady(Duration.ofSeconds(120))) {
        for (int tokens : List.of(CONNECTIONS, CONNECTIONS / 4)) {
          WaitContention.Result w = WaitContention.run(ack, service.port(), "bench-" + tokens, tokens, CONNECTIONS,
              settings.warmup(), settings.closed(), out);
          waits.add(w);
          log(String.format(Locale.ROOT, "  %d tokens: %.0f activate+release cycles/s (%d failed); the pool's wait_ms "
              + "p50 %d p99 %d max %d, %d timed out", tokens, w.cyclesPerSecond(), w.failed(), w.waitP50(), w.waitP99(),
              w.waitMax(), w.timedOut()));
        }
        service.terminate(Duration.ofSeconds(60));
      } finally {
        TestDatabase.drop(database);
      }
    }
  }

  /** Failover times of a three-node cluster over several kills of the owner, in milliseconds. */
  private final List<Long> failovers = new ArrayList<>();

  /**
   * A cluster: activation through the owner of the pools and through another node (one forwarding
   * hop over the clustered event bus), two nodes, memory mode; then three durable nodes whose owner
   * is killed several times, each time measuring how long until a survivor answers activations again.
   */
  private void cluster(Path activate) throws Exception {
    log("cluster: activation through the owner and through a non-owner (memory, two nodes)");
    String database = TestDatabase.create();
    settle();
    int[] ports = {dev.tokenlease.support.RunningService.freePort(), dev.tokenlease.support.RunningService.freePort(),
        dev.tokenlease.support.RunningService.freePort()};
    try (ServiceProcess first = launch("cluster-node1", clusterEnv(database, "memory", ports, 0)).awaitReady(Duration.ofSeconds(120));
         ServiceProcess second = launch("cluster-node2", clusterEnv(database, "memory", ports, 1)).awaitReady(Duration.ofSeconds(120))) {
      scenarios.add(measure("cluster-owner", "activate through the owner node, memory ack, 2-node cluster",
          first.port(), activate, this::activation));
      scenarios.add(measure("cluster-forward", "activate through a non-owner (forwarded), memory ack, 2-node cluster",
          second.port(), activate, this::activation));
      second.terminate(Duration.ofSeconds(60));
      first.terminate(Duration.ofSeconds(60));
    } finally {
      TestDatabase.drop(database);
    }

    int kills = settings.name().equals("quick") ? 3 : 5;
    log("cluster: failover of a three-node durable cluster over " + kills + " kills of the owner");
    database = TestDatabase.create();
    ServiceProcess[] nodes = new ServiceProcess[3];
    try {
      for (int i = 0; i < 3; i++) {
        nodes[i] = ServiceProcess.launch(clusterEnv(database, "durable", ports, i));
      }
      for (ServiceProcess node : nodes) {
        node.awaitReady(Duration.ofSeconds(120));
      }
      for (int k = 0; k < kills; k++) {
        int owner = ownerOf(nodes[(k + 1) % 3], ports);
        int survivor = (owner + 1) % 3;
        // Activations through a survivor every 50 ms, each on its own: the failover time is from the
        // kill to the first answer 200 to one sent after it (one in flight to the dead owner waits out
        // TOKENS_CLUSTER_FORWARD_TIMEOUT, which is the caller's view, not the cluster's).
        Http via = nodes[survivor].http();
        java.util.concurrent.atomic.AtomicLong recoveredAt = new java.util.concurrent.atomic.AtomicLong(Long.MAX_VALUE);
        long killed = System.nanoTime();
        nodes[owner].kill();
        while (System.nanoTime() - killed < TimeUnit.SECONDS.toNanos(30) && recoveredAt.get() == Long.MAX_VALUE) {
          via.sendAsync("POST", "/api/tokens/activate", "{\"user_id\":\"" + UUID.randomUUID() + "\"}")
              .thenAccept(answer -> {
                if (answer.status() == 200) {
                  recoveredAt.accumulateAndGet(System.nanoTime(), Math::min);
                }
              });
          Thread.sleep(50); // the probe's pace
        }
        long recovered = recoveredAt.get() == Long.MAX_VALUE ? -1
            : TimeUnit.NANOSECONDS.toMillis(recoveredAt.get() - killed);
        failovers.add(recovered);
        log("  kill " + (k + 1) + ": activations answered again after " + recovered + " ms");
        nodes[owner].close();
        nodes[owner] = ServiceProcess.launch(clusterEnv(database, "durable", ports, owner)).awaitReady(Duration.ofSeconds(120));
      }
    } finally {
      for (ServiceProcess node : nodes) {
        if (node != null) {
          node.close();
        }
      }
      TestDatabase.drop(database);
    }
  }

  private static Map<String, String> clusterEnv(String database, String ack, int[] clusterPorts, int node) {
    String members = java.util.Arrays.stream(clusterPorts).mapToObj(p -> "127.0.0.1:" + p)
        .collect(java.util.stream.Collectors.joining(","));
    return Map.of("TOKENS_PG_URL", database, "TOKENS_PERSISTENCE_ACK", ack, "TOKENS_POOL_SIZE", "100",
        "TOKENS_CLUSTER", "true", "TOKENS_CLUSTER_PORT", Integer.toString(clusterPorts[node]),
        "TOKENS_CLUSTER_MEMBERS", members, "TOKENS_PERSISTENCE_QUEUE_CAPACITY", "20000");
  }

  /** Which node owns the pools, as {@code asked} reports it. */
  private static int ownerOf(ServiceProcess asked, int[] clusterPorts) {
    String owner = asked.http().get("/api/health").json().getJsonArray("pools").getJsonObject(0).getString("owner");
    for (int i = 0; i < clusterPorts.length; i++) {
      if (("127.0.0.1:" + clusterPorts[i]).equals(owner)) {
        return i;
      }
    }
    throw new IllegalStateException("no owner: " + owner);
  }

  private void mixed() throws Exception {
    log("mixed: 80 % GET token, 15 % activate, 5 % usages (durable)");
    String database = TestDatabase.create();
    try (ServiceProcess service = launch("mixed", serviceEnv(database, "durable", 100))
        .awaitReady(Duration.ofSeconds(120))) {
      List<String> ids = new ArrayList<>();
      for (Object token : service.http().get("/api/tokens").array("tokens")) {
        ids.add(((JsonObject) token).getString("token_id"));
      }
      Path script = write("mixed.lua", Wrk.mixedScript(ids));
      Supplier<OpenLoopLoad.Call> calls = () -> {
        int roll = ThreadLocalRandom.current().nextInt(100);
        String id = ids.get(ThreadLocalRandom.current().nextInt(ids.size()));
        if (roll < 80) {
          return new OpenLoopLoad.Call(HttpMethod.GET, "/api/tokens/" + id, null);
        }
        return roll < 95 ? activation() : new OpenLoopLoad.Call(HttpMethod.GET, "/api/tokens/" + id + "/usages", null);
      };
      scenarios.add(measure("mixed", "80 % get, 15 % activate, 5 % usages, durable", service.port(), script, calls));
      service.terminate(Duration.ofSeconds(60));
    } finally {
      TestDatabase.drop(database);
    }
  }

  private void scale(int size, Path activate) throws Exception {
    log("scale: pool of " + size + " tokens (memory ack)");
    String database = TestDatabase.create();
    Map<String, String> env = serviceEnv(database, "memory", size);
    try {
      long launched = System.nanoTime();
      double firstStart;
      try (ServiceProcess first = ServiceProcess.launch(env).awaitReady(Duration.ofSeconds(300))) {
        firstStart = (System.nanoTime() - launched) / 1e9;
        first.terminate(Duration.ofSeconds(60));
      }
      launched = System.nanoTime();
      try (ServiceProcess service = ServiceProcess.launch(env).awaitReady(Duration.ofSeconds(300))) {
        double restart = (System.nanoTime() - launched) / 1e9;
        long heap = heapUsedAfterGc(service.process().pid());
        Wrk.run(service.port(), activate, settings.warmup(), WRK_THREADS, CONNECTIONS);
        Wrk.Result result = Wrk.run(service.port(), activate, settings.closed(), WRK_THREADS, CONNECTIONS);
        Scale base = scales.isEmpty() ? null : scales.get(0);
        double perToken = base == null ? Double.NaN : (double) (heap - base.heapUsedBytes()) / (size - base.tokens());
        double core = poolCoreRate(size);
        scales.add(new Scale(size, result.goodput(), core, heap, perToken, firstStart, restart));
        log(String.format(Locale.ROOT, "  %d tokens: %.0f rps, pool core %.0f activations/s, heap %.1f MB, first start %.1f s, restart %.1f s",
            size, result.goodput(), core, heap / 1e6, firstStart, restart));
        service.terminate(Duration.ofSeconds(60));
      }
    } finally {
      TestDatabase.drop(database);
    }
  }

  /**
   * Activations per second of the pool core alone (TokenPool in this process, one thread, changes
   * drained as the verticle does), on a full pool so that every activation evicts: what the
   * in-memory design costs at this size, without HTTP or the database.
   */
  private static double poolCoreRate(int size) {
    List<PoolSnapshot.StoredToken> tokens = new ArrayList<>(size);
    for (int i = 1; i <= size; i++) {
      tokens.add(new PoolSnapshot.StoredToken(UUID.randomUUID(), i, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0));
    }
    TokenPool pool = new TokenPool(new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME), Duration.ofHours(1),
        Clock.systemUTC(), System::nanoTime);
    UUID[] users = new UUID[4096];
    for (int i = 0; i < users.length; i++) {
      users[i] = UUID.randomUUID();
    }
    for (int i = 0; i < size; i++) {
      pool.activate(users[i & 4095]);
    }
    pool.drainChanges();
    long operations = 0;
    long start = System.nanoTime();
    long end = start + TimeUnit.SECONDS.toNanos(3);
    while (System.nanoTime() < end) {
      for (int i = 0; i < 1000; i++) {
        pool.activate(users[(int) (operations++ & 4095)]);
      }
      pool.drainChanges();
    }
    return operations / ((System.nanoTime() - start) / 1e9);
  }

  /**
   * The service as configured by default, except a write-behind queue of 20,000 changes: a run then
   * measures the rate the database sustains rather than a burst the queue absorbs (a full queue
   * answers 503, which is counted as a failure, not as throughput).
   */
  private static Map<String, String> serviceEnv(String database, String ack, int poolSize) {
    return Map.of("TOKENS_PG_URL", database, "TOKENS_PERSISTENCE_ACK", ack,
        "TOKENS_POOL_SIZE", Integer.toString(poolSize), "TOKENS_PERSISTENCE_QUEUE_CAPACITY", "20000");
  }

  /** Warm up, find the maximum closed-loop rate, then measure latency open-loop at half of it. */
  private Scenario measure(String name, String description, int port, Path script, Supplier<OpenLoopLoad.Call> calls)
      throws Exception {
    return measure(name, description, port, script, calls, CONNECTIONS);
  }

  /**
   * As {@link #measure(String, String, int, Path, Supplier)} with this many connections, reporting the
   * pauses (safepoints) of the server and of this process during the latency run.
   */
  private Scenario measure(String name, String description, int port, Path script, Supplier<OpenLoopLoad.Call> calls,
      int connections) throws Exception {
    Wrk.run(port, script, settings.warmup(), WRK_THREADS, connections);
    Wrk.Result max = Wrk.run(port, script, settings.closed(), WRK_THREADS, connections);
    double half = Math.max(100, max.goodput() / 2);
    awaitWritesDrained(port);
    OpenLoopLoad.run(port, half, Duration.ofSeconds(2), connections, calls);
    Pauses server = pausesByPort.get(port);
    long serverMark = server == null ? 0 : server.mark();
    long generatorMark = generatorPauses.mark();
    OpenLoopLoad.Result latency = OpenLoopLoad.run(port, half, settings.open(), connections, calls);
    Pauses.Seen serverSeen = server == null ? Pauses.Seen.NONE : server.since(serverMark);
    Pauses.Seen generatorSeen = generatorPauses.since(generatorMark);
    Histogram h = latency.latencyMicros();
    Scenario scenario = new Scenario(name, description, connections, max.goodput(), max.failures(), half,
        latency.achievedRate(), h.getValueAtPercentile(50) / 1000.0, h.getValueAtPercentile(99) / 1000.0,
        h.getValueAtPercentile(99.9) / 1000.0, latency.errors(), serverSeen, generatorSeen);
    log(String.format(Locale.ROOT, "  %s: max %.0f rps (%d failed); at %.0f rps (achieved %.0f) p50 %.2f ms p99 %.2f ms p99.9 %.2f ms (%d errors)%s",
        name, scenario.maxRps(), scenario.failures(), half, latency.achievedRate(), scenario.p50(), scenario.p99(),
        scenario.p999(), scenario.halfErrors(), latency.generatorBound() ? " [generator-bound]" : ""));
    log("    pauses during the latency run: server " + serverSeen + "; generator " + generatorSeen);
    return scenario;
  }

  /**
   * After a closed-loop run the service may still be writing what it acknowledged (memory mode);
   * latency at half load is measured once that backlog is gone, not while the database catches up.
   * Servers without the health endpoint have nothing to drain.
   */
  private static void awaitWritesDrained(int port) throws InterruptedException {
    Http http = new Http(port);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      Http.Response health = http.get("/api/health");
      if (health.status() == 404 || health.status() == 405 || health.json().getLong("write_backlog", 0L) == 0) {
        return;
      }
      Thread.sleep(100);
    }
  }

  private OpenLoopLoad.Call activation() {
    return new OpenLoopLoad.Call(HttpMethod.POST, "/api/tokens/activate",
        Buffer.buffer("{\"user_id\":\"" + UUID.randomUUID() + "\"}"));
  }

  private static final Pattern HEAP_USED = Pattern.compile("used (\\d+)K");

  /** Heap in use right after a full collection, read with jcmd. */
  private static long heapUsedAfterGc(long pid) throws IOException, InterruptedException {
    jcmd(pid, "GC.run");
    String info = jcmd(pid, "GC.heap_info");
    Matcher used = HEAP_USED.matcher(info);
    if (!used.find()) {
      throw new IllegalStateException("cannot read heap use from:\n" + info);
    }
    return Long.parseLong(used.group(1)) * 1024;
  }

  private static String jcmd(long pid, String command) throws IOException, InterruptedException {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    Process process = new ProcessBuilder(jcmd.toString(), Long.toString(pid), command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    process.waitFor(60, TimeUnit.SECONDS);
    return output;
  }

  private Path write(String name, String content) throws IOException {
    return Files.writeString(out.resolve(name), content);
  }

  private static void log(String line) {
    System.out.println("[bench " + Instant.now().toString().substring(11, 19) + "] " + line);
  }

  private double rps(String name) {
    return scenarios.stream().filter(s -> s.name().equals(name)).mapToDouble(Scenario::maxRps).findFirst().orElse(Double.NaN);
  }

  private void report(Duration took) throws IOException {
    Map<String, Double> ratios = new HashMap<>();
    ratios.put("memory/noop", rps("memory") / rps("noop"));
    ratios.put("durable/memory", rps("durable") / rps("memory"));
    ratios.put("memory/dblock", rps("memory") / rps("dblock"));
    ratios.put("durable/dblock", rps("durable") / rps("dblock"));
    ratios.put("auth/memory", rps("auth") / rps("memory"));
    double peer = redisson == null ? Double.NaN : redisson.cyclesPerSecond();
    ratios.put("memory/redisson", rps("memory") / peer);
    ratios.put("durable/redisson", rps("durable") / peer);

    StringBuilder md = new StringBuilder();
    md.append("# Benchmark (").append(settings.name()).append(", ").append(Instant.now().toString(), 0, 19).append("Z)\n\n");
    md.append(String.format(Locale.ROOT, "Machine: %d cores, %s %s, Java %s. wrk -t%d -c%d; open loop %d connections. Took %d s.%n%n",
        cores, System.getProperty("os.name"), System.getProperty("os.arch"), System.getProperty("java.version"),
        WRK_THREADS, CONNECTIONS, CONNECTIONS, took.toSeconds()));
    if (!settings.serverJvm().isEmpty()) {
      md.append("The service ran with ").append(String.join(" ", settings.serverJvm())).append(" added to java -jar.\n\n");
    }
    md.append("max rps counts successful answers only; failed is the number of non-2xx answers in that run.\n\n");
    md.append("Latency is measured open-loop at half the maximum; when the generator, sharing the machine, could not\n"
        + "send that rate (achieved < 95 % of offered), the row says so and its latencies describe the generator.\n\n");
    md.append("Pauses are the stop-the-world safepoints (collections and the rest) logged during the latency run, by\n"
        + "the server and by the generator (this process): count, how many took over 1 ms, the longest.\n\n");
    md.append("| scenario | what | conns | max rps | failed | half-load rps (achieved) | p50 ms | p99 ms | p99.9 ms | errors "
        + "| server pauses (>1 ms, max ms) | generator pauses (>1 ms, max ms) |\n");
    md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (Scenario s : scenarios) {
      boolean bound = s.halfAchieved() < 0.95 * s.halfRate();
      md.append(String.format(Locale.ROOT, "| %s | %s | %d | %.0f | %d | %.0f (%.0f%s) | %.2f | %.2f | %.2f | %d | %d (%d, %.1f) | %d (%d, %.1f) |%n",
          s.name(), s.description(), s.connections(), s.maxRps(), s.failures(), s.halfRate(), s.halfAchieved(),
          bound ? ", generator-bound" : "", s.p50(), s.p99(), s.p999(), s.halfErrors(), s.servicePauses().count(),
          s.servicePauses().overOneMilli(), s.servicePauses().maxMillis(), s.generatorPauses().count(),
          s.generatorPauses().overOneMilli(), s.generatorPauses().maxMillis()));
    }
    if (redisson != null) {
      md.append(String.format(Locale.ROOT, "%nPeer: Redisson RPermitExpirableSemaphore (100 permits, lease PT2M, local Redis, "
          + "%d async loops in this process): %.0f acquire + release cycles/s (%d failed), cycle p50 %.2f ms p99 %.2f ms.%n",
          CONNECTIONS, redisson.cyclesPerSecond(), redisson.failed(), redisson.p50Millis(), redisson.p99Millis()));
    }
    md.append("\n| ratio | value | target |\n|---|---:|---|\n");
    md.append(String.format(Locale.ROOT, "| memory/noop | %.2f | >= 0.70 |%n", ratios.get("memory/noop")));
    md.append(String.format(Locale.ROOT, "| durable/memory | %.2f | >= 0.50 |%n", ratios.get("durable/memory")));
    md.append(String.format(Locale.ROOT, "| memory/dblock | %.1f | >= 10 |%n", ratios.get("memory/dblock")));
    md.append(String.format(Locale.ROOT, "| durable/dblock | %.1f | >= 3 |%n", ratios.get("durable/dblock")));
    md.append(String.format(Locale.ROOT, "| auth/memory | %.2f | >= 0.80 |%n", ratios.get("auth/memory")));
    md.append(String.format(Locale.ROOT, "| memory/redisson | %.2f | >= 2 (goal) |%n", ratios.get("memory/redisson")));
    md.append(String.format(Locale.ROOT, "| durable/redisson | %.2f | >= 1 (goal) |%n", ratios.get("durable/redisson")));
    md.append(String.format(Locale.ROOT, "%nBearer check alone (SHA-256 + lookup, one thread): %.0f checks/s.%n",
        bearerChecksPerSecond));
    if (!waits.isEmpty()) {
      md.append("\n| wait pool (closed loops of activate + release) | ack | tokens | connections | cycles/s | failed "
          + "| pool wait_ms p50 | p99 | max | timed out |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
      for (WaitContention.Result w : waits) {
        md.append(String.format(Locale.ROOT, "| %s | %s | %d | %d | %.0f | %d | %d | %d | %d | %d |%n",
            w.tokens() < w.clients() ? "contended (callers wait)" : "baseline (a token per connection)", w.ack(),
            w.tokens(), w.clients(), w.cyclesPerSecond(), w.failed(), w.waitP50(), w.waitP99(), w.waitMax(), w.timedOut()));
      }
      md.append("\n");
    }
    if (crossing != null) {
      md.append(String.format(Locale.ROOT, "Crossing to the pool verticle (in-process, %s): request/reply %.0f calls/s, "
          + "PoolClient's direct completion %.0f calls/s (%.2fx).%n", "256 reads in flight", crossing.requestReply(),
          crossing.direct(), crossing.ratio()));
    }
    if (rps("cluster-owner") > 0) {
      md.append(String.format(Locale.ROOT, "%nCluster: activation through a non-owner node runs at %.2f of the owner's "
          + "rate (cluster-forward/cluster-owner, one forwarding hop).%n", rps("cluster-forward") / rps("cluster-owner")));
    }
    if (!failovers.isEmpty()) {
      List<Long> sorted = failovers.stream().sorted().toList();
      md.append(String.format(Locale.ROOT, "Cluster failover after kill -9 of the owner (three durable nodes, %d kills): "
          + "median %d ms, max %d ms (target < 5000, goal 2000); each: %s.%n", sorted.size(), sorted.get(sorted.size() / 2),
          sorted.get(sorted.size() - 1), failovers));
    }
    md.append("\n| tokens | activate rps (service, memory) | pool core activations/s | heap after GC MB | heap bytes/token | first start s | restart s |\n");
    md.append("|---:|---:|---:|---:|---:|---:|---:|\n");
    for (Scale s : scales) {
      md.append(String.format(Locale.ROOT, "| %d | %.0f | %.0f | %.1f | %s | %.1f | %.1f |%n", s.tokens(), s.rps(),
          s.coreOpsPerSecond(), s.heapUsedBytes() / 1e6,
          Double.isNaN(s.heapBytesPerToken()) ? "(base)" : String.format(Locale.ROOT, "%.0f", s.heapBytesPerToken()),
          s.firstStartSeconds(), s.restartSeconds()));
    }
    String last = String.format(Locale.ROOT,
        "bench: noop=%.0f memory=%.0f durable=%.0f dblock=%.0f memory/noop=%.2f durable/memory=%.2f memory/dblock=%.1f durable/dblock=%.1f",
        rps("noop"), rps("memory"), rps("durable"), rps("dblock"), ratios.get("memory/noop"), ratios.get("durable/memory"),
        ratios.get("memory/dblock"), ratios.get("durable/dblock"));
    md.append("\n").append(last).append("\n");
    Files.writeString(out.resolve("bench.md"), md);

    JsonObject json = new JsonObject().put("mode", settings.name()).put("cores", cores)
        .put("java", System.getProperty("java.version")).put("seconds", took.toSeconds())
        .put("bearerChecksPerSecond", Double.isNaN(bearerChecksPerSecond) ? null : bearerChecksPerSecond)
        .put("wait", new JsonArray(waits.stream().map(JsonObject::mapFrom).toList()))
        .put("clusterFailoverMillis", new JsonArray(new ArrayList<>(failovers)))
        .put("redisson", redisson == null ? null : JsonObject.mapFrom(redisson))
        .put("crossing", crossing == null ? null : new JsonObject().put("requestReplyPerSecond", crossing.requestReply())
            .put("directPerSecond", crossing.direct()));
    JsonArray scenarioJson = new JsonArray();
    scenarios.forEach(s -> scenarioJson.add(JsonObject.mapFrom(s)));
    JsonArray scaleJson = new JsonArray();
    scales.forEach(s -> scaleJson.add(new JsonObject().put("tokens", s.tokens()).put("rps", s.rps())
        .put("poolCoreOpsPerSecond", s.coreOpsPerSecond())
        .put("heapUsedBytes", s.heapUsedBytes())
        .put("heapBytesPerToken", Double.isNaN(s.heapBytesPerToken()) ? null : s.heapBytesPerToken())
        .put("firstStartSeconds", s.firstStartSeconds()).put("restartSeconds", s.restartSeconds())));
    JsonObject ratioJson = new JsonObject();
    ratios.forEach(ratioJson::put);
    json.put("scenarios", scenarioJson).put("scale", scaleJson).put("ratios", ratioJson).put("summary", last);
    Files.writeString(out.resolve("bench.json"), json.encodePrettily());

    System.out.println();
    System.out.println(md);
    System.out.println(last);
  }

  /** A bench server process ({@link BenchServer}) on a free port. */
  private static final class Child implements AutoCloseable {
    private final Process process;
    private final int port;

    private Child(Process process, int port) {
      this.process = process;
      this.port = port;
    }

    static Child benchServer(String mode, List<String> extra, Pauses pauses) throws Exception {
      int port = RunningService.freePort();
      List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          pauses.option(), "-cp", System.getProperty("java.class.path"), BenchServer.class.getName(), mode, Integer.toString(port),
          Integer.toString(Runtime.getRuntime().availableProcessors())));
      command.addAll(extra);
      Process process = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(Path.of("target", "bench", mode + "-server.log").toFile()).start();
      Http http = new Http(port);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new IllegalStateException(mode + " server exited; see target/bench/" + mode + "-server.log");
        }
        try {
          if (http.post("/api/tokens/activate", "{\"user_id\":\"" + UUID.randomUUID() + "\"}").status() == 200) {
            return new Child(process, port);
          }
        } catch (RuntimeException notYet) {
          // not listening yet
        }
        Thread.sleep(50);
      }
      process.destroyForcibly();
      throw new IllegalStateException(mode + " server did not start");
    }

    int port() {
      return port;
    }

    @Override
    public void close() throws InterruptedException {
      process.destroy();
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    }
  }
}
