package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenlease.support.TestDatabase;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The container image built by {@code src/image/build.sh}: its configuration, its contents, and (where
 * this machine can run containers) the service started from it. Slow (it builds the image), so it
 * runs only with {@code TOKENS_IMAGE_TEST=1} in the environment or as a system property.
 */
@DisplayName("The container image")
class ContainerImageIT {
  private static final Duration BUILD = Duration.ofMinutes(15);
  private static final Duration START = Duration.ofSeconds(120);
  /** crun fails on this kind of machine's cgroup layout; the default ulimits exceed what root may set. */
  private static final List<String> RUN = List.of("podman", "--runtime", "runc", "run",
      "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768");
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  private static String image;
  private static boolean canRun;

  private record Result(int exit, String output) {}

  @BeforeAll
  static void build() throws Exception {
    String flag = System.getProperty("TOKENS_IMAGE_TEST", System.getenv("TOKENS_IMAGE_TEST"));
    assumeTrue("1".equals(flag), "set TOKENS_IMAGE_TEST=1 to build and test the container image");
    Files.deleteIfExists(Path.of("target/image-start.txt"));
    long t0 = System.nanoTime();
    Result built = exec(BUILD, "bash", "src/image/build.sh");
    assertThat(built.exit()).as("src/image/build.sh failed:%n%s", built.output()).isZero();
    Properties info = new Properties();
    try (var in = Files.newBufferedReader(Path.of("target/image-size.txt"))) {
      info.load(in);
    }
    image = info.getProperty("image");
    System.out.printf("[image] %s built in %d s, %s MB (OCI archive %s MB)%n", image,
        Duration.ofNanos(System.nanoTime() - t0).toSeconds(), info.getProperty("size_mb"), info.getProperty("oci_archive_mb"));
    List<String> probe = new ArrayList<>(RUN);
    probe.addAll(List.of("--rm", "--network=host", "--entrypoint", "/opt/java/bin/java", image, "-version"));
    Result probed = exec(Duration.ofSeconds(60), probe.toArray(String[]::new));
    canRun = probed.exit() == 0;
    if (!canRun) {
      System.out.println("[image] cannot run containers here, so only the image itself is checked:\n" + probed.output());
    }
  }

  @Test
  @DisplayName("is configured to run as a service: non-root, port 4000, a health check, /data, java -jar")
  void configuration() throws Exception {
    Result inspected = exec(Duration.ofSeconds(30), "podman", "image", "inspect", image);
    assertThat(inspected.exit()).as(inspected.output()).isZero();
    JsonObject meta = new JsonArray(inspected.output()).getJsonObject(0);
    JsonObject config = meta.getJsonObject("Config");
    String user = config.getString("User", "");
    assertThat(user).as("user").isNotBlank().doesNotStartWith("0").doesNotStartWith("root");
    assertThat(config.getJsonObject("ExposedPorts").fieldNames()).contains("4000/tcp");
    assertThat(config.getJsonArray("Entrypoint").getList()).containsExactly("java", "-jar", "/app/token-service.jar");
    assertThat(config.getJsonArray("Env").getList()).contains("TOKENS_DATA_DIR=/data");
    assertThat(config.getJsonObject("Volumes").fieldNames()).contains("/data");
    assertThat(config.getString("WorkingDir")).isEqualTo("/app");
    // podman puts the docker-format health check beside Config; older versions inside it.
    JsonObject health = meta.getJsonObject("Healthcheck", config.getJsonObject("Healthcheck"));
    assertThat(health).as("health check").isNotNull();
    assertThat(health.getJsonArray("Test").getList()).contains("/app/healthcheck.sh");
  }

  @Test
  @DisplayName("holds the jar, the default configuration, a JRE that runs in the image's own root, and curl")
  void contents() throws Exception {
    Result mounted = exec(Duration.ofSeconds(60), "podman", "image", "mount", image);
    assertThat(mounted.exit()).as(mounted.output()).isZero();
    Path root = Path.of(lastLine(mounted));
    try {
      assertThat(root.resolve("app/token-service.jar")).isRegularFile();
      assertThat(root.resolve("app/conf/config.json")).hasSameTextualContentAs(Path.of("conf/config.json"));
      assertThat(root.resolve("app/healthcheck.sh")).isExecutable();
      assertThat(root.resolve("usr/bin/curl")).isExecutable();
      assertThat(Files.getOwner(root.resolve("data")).getName()).isIn("nobody", "65534");
      try (JarFile jar = new JarFile(root.resolve("app/token-service.jar").toFile())) {
        assertThat(jar.getManifest().getMainAttributes().getValue("Main-Class")).isEqualTo("dev.tokenlease.Main");
      }
      // Without a container: the image's JRE, in a chroot of the image's own root (no /proc there, so
      // the launcher's $ORIGIN rpath does not resolve: the library path is given).
      Result java = exec(Duration.ofSeconds(60), "chroot", root.toString(), "/usr/bin/env", "LD_LIBRARY_PATH=/opt/java/lib",
          "/opt/java/bin/java", "-version");
      assertThat(java.exit()).as(java.output()).isZero();
      assertThat(java.output()).contains("17.");
    } finally {
      exec(Duration.ofSeconds(30), "podman", "image", "unmount", image);
    }
  }

  @Test
  @DisplayName("starts against an external PostgreSQL, turns ready and healthy, and stops cleanly on SIGTERM")
  void externalDatabase() throws Exception {
    assumeTrue(canRun, "podman --runtime runc run does not work here");
    String url = TestDatabase.create();
    int port = freePort();
    String name = "token-service-it-" + UUID.randomUUID().toString().substring(0, 8);
    try {
      Duration started = start(name, port, "-e", "TOKENS_PG_URL=" + url);
      record("external_db_start_s", started);
      System.out.printf("[image] ready with an external PostgreSQL after %.1f s%n", started.toMillis() / 1000.0);
      assertThat(started).isLessThan(START);
      Result health = exec(Duration.ofSeconds(30), "podman", "healthcheck", "run", name);
      assertThat(health.exit()).as("podman healthcheck run: %s", health.output()).isZero();
      String tokenId = activate(port);
      assertThat(tokenId).isNotBlank();
      assertThat(TestDatabase.query(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"))
          .as("tables the service's migrations made").isNotEqualTo("0");
      Result stopped = exec(Duration.ofSeconds(60), "podman", "stop", "-t", "30", name);
      assertThat(stopped.exit()).as(stopped.output()).isZero();
      assertThat(lastLine(exec(Duration.ofSeconds(30), "podman", "inspect", "--format", "{{.State.ExitCode}}", name)))
          .as("exit code after SIGTERM").isEqualTo("0");
    } finally {
      exec(Duration.ofSeconds(60), "podman", "rm", "-f", "-v", "-t", "5", name);
      TestDatabase.drop(url);
    }
  }

  @Test
  @DisplayName("quick start: with no database configured it runs on the embedded PostgreSQL, keeping its data in a volume")
  void embeddedDatabase() throws Exception {
    assumeTrue(canRun, "podman --runtime runc run does not work here");
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    String volume = "token-service-it-data-" + suffix;
    String name = "token-service-it-" + suffix;
    int port = freePort();
    try {
      Duration first = start(name, port, "-v", volume + ":/data");
      record("embedded_first_start_s", first);
      String tokenId = activate(port);
      assertThat(exec(Duration.ofSeconds(60), "podman", "stop", "-t", "30", name).exit()).isZero();
      exec(Duration.ofSeconds(60), "podman", "rm", "-f", "-v", name);
      Duration again = start(name, port, "-v", volume + ":/data");
      record("embedded_restart_s", again);
      System.out.printf("[image] embedded PostgreSQL: ready after %.1f s (first start), %.1f s (restart)%n",
          first.toMillis() / 1000.0, again.toMillis() / 1000.0);
      HttpResponse<String> token = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/tokens/" + tokenId))
          .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(token.statusCode()).as(token.body()).isEqualTo(200);
      assertThat(new JsonObject(token.body()).getString("state")).isEqualTo("active");
    } finally {
      exec(Duration.ofSeconds(60), "podman", "rm", "-f", "-v", "-t", "5", name);
      exec(Duration.ofSeconds(60), "podman", "volume", "rm", "-f", volume);
    }
  }

  /** Starts the container detached and returns the time until /health/ready answers 200. */
  private static Duration start(String name, int port, String... options) throws Exception {
    List<String> cmd = new ArrayList<>(RUN);
    cmd.addAll(List.of("-d", "--name", name, "--network=host", "-e", "TOKENS_HTTP_PORT=" + port));
    cmd.addAll(List.of(options));
    cmd.add(image);
    long t0 = System.nanoTime();
    Result run = exec(Duration.ofSeconds(60), cmd.toArray(String[]::new));
    assertThat(run.exit()).as("podman run: %s", run.output()).isZero();
    URI ready = URI.create("http://127.0.0.1:" + port + "/health/ready");
    while (System.nanoTime() - t0 < START.toNanos()) {
      try {
        HttpResponse<Void> response = HTTP.send(HttpRequest.newBuilder(ready).timeout(Duration.ofSeconds(2)).build(),
            HttpResponse.BodyHandlers.discarding());
        if (response.statusCode() == 200) {
          return Duration.ofNanos(System.nanoTime() - t0);
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      String state = exec(Duration.ofSeconds(30), "podman", "inspect", "--format", "{{.State.Status}}", name).output();
      if (state.contains("exited")) {
        throw new AssertionError("the container exited:\n" + exec(Duration.ofSeconds(30), "podman", "logs", name).output());
      }
      Thread.sleep(200);
    }
    throw new AssertionError("not ready within " + START + ":\n" + exec(Duration.ofSeconds(30), "podman", "logs", name).output());
  }

  private static String activate(int port) throws Exception {
    String body = new JsonObject().put("user_id", UUID.randomUUID().toString()).encode();
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/tokens/activate"))
        .header("content-type", "application/json").timeout(Duration.ofSeconds(10))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return new JsonObject(response.body()).getString("token_id");
  }

  private static void record(String key, Duration value) throws IOException {
    Files.writeString(Path.of("target/image-start.txt"), String.format("%s=%.1f%n", key, value.toMillis() / 1000.0),
        StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
  }

  private static String lastLine(Result result) {
    return result.output().strip().lines().reduce((a, b) -> b).orElse("").strip();
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  private static Result exec(Duration timeout, String... cmd) throws Exception {
    Path log = Files.createTempFile("container-image-it", ".log");
    try {
      Process process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
        throw new AssertionError(String.join(" ", cmd) + " did not finish within " + timeout + ":\n" + Files.readString(log));
      }
      return new Result(process.exitValue(), Files.readString(log));
    } finally {
      Files.deleteIfExists(log);
    }
  }
}
