package dev.tokenlease.platform.db;

import io.vertx.pgclient.PgConnectOptions;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Brings the schema up to date over JDBC, before any verticle is deployed. */
public final class Migrations {
  private static final Logger LOG = LoggerFactory.getLogger(Migrations.class);

  private Migrations() {}

  public static void migrate(PgConnectOptions options) {
    String jdbcUrl = "jdbc:postgresql://" + options.getHost() + ":" + options.getPort() + "/" + options.getDatabase();
    Flyway flyway = Flyway.configure()
        .dataSource(jdbcUrl, options.getUser(), options.getPassword())
        .locations("classpath:db/migration")
        .load();
    MigrateResult result = flyway.migrate();
    LOG.info("Schema at version {} ({} migrations applied now)",
        flyway.info().current().getVersion(), result.migrationsExecuted);
  }
}
