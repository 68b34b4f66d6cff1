package dev.tokenlease.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The packaged service ({@code target/token-service.jar}) run as a separate process. */
public final class ServiceProcess implements AutoCloseable {
  private final Process process;
  private final Path output;
  private final int port;

  private ServiceProcess(Process process, Path output, int port) {
    this.process = process;
    this.output = output;
    this.port = port;
  }

  /** Starts the jar with these environment variables (and a free port unless one is given). */
  public static ServiceProcess launch(Map<String, String> env) throws IOException {
    return launch(env, List.of());
  }

  /** As {@link #launch(Map)}, with these options for the JVM (a GC log, say). */
  public static ServiceProcess launch(Map<String, String> env, List<String> jvmOptions) throws IOException {
    Path jar = Path.of("target", "token-service.jar");
    if (!Files.exists(jar)) {
      throw new IllegalStateException("run 'mvn package' first: " + jar + " is missing");
    }
    Map<String, String> settings = new HashMap<>(env);
    settings.putIfAbsent("TOKENS_HTTP_PORT", Integer.toString(RunningService.freePort()));
    Path output = Files.createTempFile("token-service-", ".log");
    List<String> command = new java.util.ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.addAll(List.of("-jar", jar.toString()));
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectErrorStream(true)
        .redirectOutput(output.toFile());
    builder.environment().keySet().removeIf(name -> name.startsWith("TOKENS_"));
    builder.environment().putAll(settings);
    return new ServiceProcess(builder.start(), output, Integer.parseInt(settings.get("TOKENS_HTTP_PORT")));
  }

  /** Waits until the health endpoint answers 200; fails if the process exits first. */
  public ServiceProcess awaitReady(Duration timeout) throws Exception {
    Http http = http();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError("service exited with " + process.exitValue() + ":\n" + output());
      }
      try {
        if (http.get("/api/health").status() == 200) {
          return this;
        }
      } catch (RuntimeException notYet) {
        // not listening yet
      }
      Thread.sleep(50); // between two polls
    }
    throw new AssertionError("service not ready after " + timeout + ":\n" + output());
  }

  public Http http() {
    return new Http(port);
  }

  public int port() {
    return port;
  }

  public Process process() {
    return process;
  }

  /** SIGTERM, then the exit code (waits up to {@code timeout}). */
  public int terminate(Duration timeout) throws InterruptedException {
    process.destroy();
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("service did not exit within " + timeout + " of SIGTERM:\n" + output());
    }
    return process.exitValue();
  }

  /** SIGKILL: no shutdown hook, no flush. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  /** Sends a signal by name (STOP, CONT, …) to the process. */
  public void signal(String name) throws IOException, InterruptedException {
    int exit = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start().waitFor();
    if (exit != 0) {
      throw new IllegalStateException("kill -" + name + " " + process.pid() + " exited with " + exit);
    }
  }

    public int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("service still running after " + timeout);
    }
    return process.exitValue();
  }

  public String output() {
    try {
      return Files.readString(output);
    } catch (IOException e) {
      return "(no output: " + e.getMessage() + ")";
    }
  }

  @Override
  public void close() throws Exception {
    if (process.isAlive()) {
      kill();
    }
    Files.deleteIfExists(output);
  }
}
