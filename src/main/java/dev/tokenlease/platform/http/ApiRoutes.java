package dev.tokenlease.platform.http;

import io.vertx.core.Vertx;
import io.vertx.ext.web.Router;
import java.util.List;

/**
 * One capability's part of the HTTP API, mounted by {@link HttpApiVerticle} on each server
 * instance's router: the server knows no capability, each capability brings its routes.
 */
@FunctionalInterface
public interface ApiRoutes {
  /**
   * @param declared where the routes are recorded, so the failure handler can answer 405 with the
   *     methods a path allows
   */
  void mount(Vertx vertx, Router router, List<RequestInput.Declared> declared);
}
