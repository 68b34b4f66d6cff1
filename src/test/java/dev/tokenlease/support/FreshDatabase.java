package dev.tokenlease.support;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * For test classes whose tests each need their own database and start the service themselves
 * (often more than once, as restarts): a fresh database before each test, and after it the service
 * (if running) stopped and the database dropped.
 */
public abstract class FreshDatabase {
  protected String database;
  protected RunningService service;

  @BeforeEach
  void createDatabase() {
    database = TestDatabase.create();
  }

  @AfterEach
  void stopAndDrop() {
    stopService();
    TestDatabase.drop(database);
  }

  /** Starts the service on this test's database (stopping one already running). */
  protected RunningService startService(JsonObject overrides) throws Exception {
    stopService();
    service = RunningService.start(database, overrides);
    return service;
  }

  protected void stopService() {
    if (service != null) {
      service.close();
      service = null;
    }
  }
}
