package dev.tokenlease.platform.db;

import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.config.ConfigException;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A PostgreSQL server started by the service itself when no {@code TOKENS_PG_URL} is configured,
 * so one command runs the service on a fresh machine. Its data stays in the data directory across
 * restarts.
 */
public final class EmbeddedDatabase implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EmbeddedDatabase.class);

  private final EmbeddedPostgres postgres;

  private EmbeddedDatabase(EmbeddedPostgres postgres) {
    this.postgres = postgres;
  }

  /** Starts (initializing on first use) a server whose data lives in {@code dataDir/postgres}. */
  public static EmbeddedDatabase start(Path dataDir) throws IOException {
    Path pgData = dataDir.resolve("postgres").toAbsolutePath();
    Files.createDirectories(pgData.getParent());
    EmbeddedPostgres postgres;
    try {
      postgres = EmbeddedPostgres.builder()
          .setDataDirectory(pgData)
          .setCleanDataDirectory(false)
          .setRegisterShutdownHook(false)
          .start();
    } catch (IllegalStateException | IOException e) {
      if (String.valueOf(e.getMessage()).startsWith("could not lock")) {
        throw new ConfigException(AppConfig.DATA_DIR + ": " + dataDir.toAbsolutePath()
            + " is in use by another running token-service; stop it, or give this one its own TOKENS_DATA_DIR");
      }
      throw e;
    }
    LOG.info("Embedded PostgreSQL listening on port {}, data in {}", postgres.getPort(), pgData);
    return new EmbeddedDatabase(postgres);
  }

  /** A {@code postgresql://} URL for the service's database on this server. */
  public String url() {
    return "postgresql://postgres@localhost:" + postgres.getPort() + "/postgres";
  }

  @Override
  public void close() throws IOException {
    postgres.close();
  }
}
