package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.CampaignCheck;
import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.LeaseLoad;
import dev.tokenlease.support.PrivatePostgres;
import dev.tokenlease.support.ServiceProcess;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fault campaign: the packaged service under load from eight clients while its PostgreSQL (a
 * private server this class owns) is stopped, killed or frozen, while the service itself is killed
 * during a database stall, or paused past its leases. Each run is judged from what the clients were
 * told and what the database holds afterwards (see {@link CampaignCheck}).
 */
@DisplayName("Faults under load: what clients were told is what the database holds")
class FaultCampaignIT {
  private static final Logger LOG = LoggerFactory.getLogger(FaultCampaignIT.class);
  private static final Duration START = Duration.ofSeconds(60);
  private static final long TTL_MILLIS = 3_000;
  private static final long MAX_LAG_MILLIS = 1_000;
  private static final int CLIENTS = 8;

  private static PrivatePostgres postgres;

  @BeforeAll
  static void startPostgres() throws Exception {
    postgres = PrivatePostgres.start();
  }

  @AfterAll
  static void stopPostgres() throws Exception {
    postgres.close();
  }

  private static Map<String, String> env(String mode, String database) {
    return env(mode, database, TTL_MILLIS);
  }

  /** The mode's settings; {@value #PIPELINED} is durable mode with four batches in flight. */
  private static Map<String, String> env(String mode, String database, long ttlMillis) {
    return Map.of("TOKENS_PG_URL", database, "TOKENS_PERSISTENCE_ACK", ack(mode), "TOKENS_POOL_SIZE", "20",
        "TOKENS_POOL_LEASE_TTL", "PT" + ttlMillis / 1000 + "S", "TOKENS_PERSISTENCE_ACK_TIMEOUT", "PT2S",
        "TOKENS_PERSISTENCE_MAX_LAG", "PT" + MAX_LAG_MILLIS / 1000 + "S", "TOKENS_HTTP_INSTANCES", "2",
        "TOKENS_PERSISTENCE_IN_FLIGHT", mode.equals(PIPELINED) ? "4" : "1");
  }

  private static final String PIPELINED = "durable, 4 batches in flight";

  private static String ack(String mode) {
    return mode.equals(PIPELINED) ? "durable" : mode;
  }

  /** Something done to the database. */
  private interface Step {
    void run() throws Exception;
  }

  /** A fault done to the database while the load runs, undone after the outage. */
  private record Fault(Step inflict, Step heal) {}

  /*
   * The sleeps in the scenarios below are deliberate: each is how long the load runs before a
   * fault, how long the fault lasts, or how long the load runs after it. The time passing is what
   * is being tested, not a wait for something to happen.
   */

  private static CampaignCheck.Findings underLoad(String scenario, String mode, Fault fault, Duration outage)
      throws Exception {
    String database = postgres.createDatabase();
    List<LeaseLoad.Outcome> outcomes;
    try (ServiceProcess service = ServiceProcess.launch(env(mode, database)).awaitReady(START)) {
      LeaseLoad load = LeaseLoad.start(service.http(), CLIENTS);
      Thread.sleep(1_000);
      fault.inflict().run();
      // Past the lag bound into the outage: by now health must tell.
      Thread.sleep(1_500);
      // Health tells the truth within the lag bound: writes fail or stall.
      Http.Response health = service.http().get("/api/health");
      assertThat(health.status()).as("health during the fault: %s", health).isEqualTo(503);
      assertThat(health.json().getString("status")).isEqualTo("degraded");
      assertThat(health.json().getString("reason")).isNotBlank();
      Thread.sleep(outage.toMillis() - 1_500);
      fault.heal().run();
      awaitHealthy(service.http(), Duration.ofSeconds(30));
      Thread.sleep(1_000);
      outcomes = load.stop();
      assertThat(service.terminate(Duration.ofSeconds(30))).isZero();
    }
    return judged(scenario, mode, database, outcomes, 0, TTL_MILLIS);
  }

  private static CampaignCheck.Findings judged(String scenario, String mode, String database,
      List<LeaseLoad.Outcome> outcomes, long restartedAt, long ttlMillis) throws Exception {
    CampaignCheck.Findings findings = CampaignCheck.judge(database, outcomes, ttlMillis, restartedAt);
    LOG.info("campaign {} ({}): {}", scenario, mode, findings);
    assertThat(findings.acknowledged()).as("the load got answers").isGreaterThan(100);
    assertThat(findings.refusedButApplied()).as("refused but applied: %s", findings).isZero();
    assertThat(findings.twoHolders()).as("two holders: %s", findings).isZero();
    assertThat(findings.generationRepeats()).as("generation repeats: %s", findings).isZero();
    assertThat(findings.overlaps()).as("overlapping history: %s", findings).isZero();
    if (ack(mode).equals("durable")) {
      assertThat(findings.acknowledgedLost()).as("acknowledged but lost: %s", findings).isZero();
    } else {
      // Everything lost was acknowledged within one lag bound (plus scheduling slack).
      assertThat(findings.lostWindowMillis()).as("loss window: %s", findings).isLessThanOrEqualTo(MAX_LAG_MILLIS + 500);
    }
    return findings;
  }

  private static void awaitHealthy(Http http, Duration timeout) throws Exception {
    Eventually.await("the service healthy again", timeout, () -> {
      try {
        return http.get("/api/health").status() == 200;
      } catch (RuntimeException notYet) {
        return false; // the service may be busy closing connections
      }
    });
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory"})
  @DisplayName("PostgreSQL stopped for 3 s and started again")
  void databaseStopped(String mode) throws Exception {
    underLoad("database stopped", mode, new Fault(() -> postgres.stop(), () -> postgres.restart()),
        Duration.ofSeconds(3));
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory", PIPELINED})
  @DisplayName("PostgreSQL killed with -9 (crash recovery) and started again")
  void databaseKilled(String mode) throws Exception {
    underLoad("database killed", mode, new Fault(() -> postgres.kill(), () -> postgres.restart()),
        Duration.ofSeconds(2));
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory"})
  @DisplayName("PostgreSQL's postmaster alone killed with -9 (its backends die on their own) and started again")
  void postmasterKilled(String mode) throws Exception {
    underLoad("postmaster killed", mode, new Fault(() -> postgres.killPostmasterOnly(), () -> postgres.restart()),
        Duration.ofSeconds(2));
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory", PIPELINED})
  @DisplayName("PostgreSQL frozen (SIGSTOP) for 5 s, mid-commit, and resumed")
  void databaseFrozen(String mode) throws Exception {
    CampaignCheck.Findings findings = underLoad("database frozen", mode,
        new Fault(() -> postgres.freeze(), () -> postgres.thaw()), Duration.ofSeconds(5));
    assertThat(findings.refused()).as("a stall is refused, not absorbed").isPositive();
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory"})
  @DisplayName("the service killed with -9 during a database stall, PostgreSQL killed too, both restarted")
  void serviceKilledDuringStall(String mode) throws Exception {
    // Leases long enough to outlast the restart, so a token handed out too early would show.
    long ttl = 10_000;
    String database = postgres.createDatabase();
    List<LeaseLoad.Outcome> outcomes = new ArrayList<>();
    long restartedAt;
    try (ServiceProcess service = ServiceProcess.launch(env(mode, database, ttl)).awaitReady(START)) {
      LeaseLoad load = LeaseLoad.start(service.http(), CLIENTS);
      Thread.sleep(1_000);
      postgres.freeze();
      Thread.sleep(2_500);
      service.kill();
      outcomes.addAll(load.stop());
    }
    postgres.thaw();
    postgres.kill();
    postgres.restart();
    restartedAt = System.currentTimeMillis();
    try (ServiceProcess service = ServiceProcess.launch(env(mode, database, ttl)).awaitReady(START)) {
      LeaseLoad load = LeaseLoad.start(service.http(), CLIENTS);
      // Past the lease TTL and the lag bound, so activations resume in memory mode too.
      Thread.sleep(ttl + MAX_LAG_MILLIS + 1_000);
      outcomes.addAll(load.stop());
      assertThat(service.terminate(Duration.ofSeconds(30))).isZero();
    }
    judged("service killed during a stall", mode, database, outcomes, restartedAt, ttl);
  }

  @ParameterizedTest(name = "{0} mode")
  @ValueSource(strings = {"durable", "memory"})
  @DisplayName("the service paused (SIGSTOP) past its leases and resumed")
  void servicePaused(String mode) throws Exception {
    String database = postgres.createDatabase();
    List<LeaseLoad.Outcome> outcomes;
    try (ServiceProcess service = ServiceProcess.launch(env(mode, database)).awaitReady(START)) {
      LeaseLoad load = LeaseLoad.start(service.http(), CLIENTS);
      Thread.sleep(1_000);
      service.signal("STOP");
      Thread.sleep(TTL_MILLIS + 1_000);
      service.signal("CONT");
      awaitHealthy(service.http(), Duration.ofSeconds(30));
      Thread.sleep(1_000);
      outcomes = load.stop();
      assertThat(service.terminate(Duration.ofSeconds(30))).isZero();
    }
    judged("service paused", mode, database, outcomes, 0, TTL_MILLIS);
  }
}
