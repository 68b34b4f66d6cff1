package dev.tokenlease.platform.http;

import io.vertx.core.Handler;
import io.vertx.ext.web.RoutingContext;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of every request: gives it an id (the caller's {@code X-Request-Id} when it is
 * well-formed, else a new one), echoes the id back, and writes one access-log line when the answer
 * is sent: method, route template (never the raw path or query, which may carry ids), status,
 * duration and the id. Nothing from headers or bodies is logged, so no token, secret or credential
 * value can reach the log.
 */
public final class RequestLog implements Handler<RoutingContext> {
  /** The logger of the access lines, to route or silence them apart from the rest. */
  public static final String ACCESS_LOGGER = "dev.tokenlease.access";
  public static final String HEADER = "X-Request-Id";
  /** Where the id is kept on the routing context. */
  public static final String ID_KEY = "request_id";
  /** Where {@link RequestInput#route} keeps the matched route's template. */
  static final String ROUTE_KEY = "route_template";
  private static final Logger ACCESS = LoggerFactory.getLogger(ACCESS_LOGGER);
  /** Ids a caller may choose: what log search and tracing tools carry safely. */
  private static final Pattern WELL_FORMED = Pattern.compile("[A-Za-z0-9._:-]{1,128}");
  /**
   * Whether the log is JSON (see logback.xml), whose lines carry the fields as key-values besides the
   * message. The text appender prints only the message, so there no key-value event is built: it and
   * its argument formatting were a quarter of the memory a request allocates (measured with JFR's
   * allocation samples under load), and so of the collector's pauses.
   */
  private static final boolean KEY_VALUES = "JSON".equals(System.getProperty("tokens.log.appender"));

  @Override
  public void handle(RoutingContext ctx) {
    String given = ctx.request().getHeader(HEADER);
    String id = given != null && WELL_FORMED.matcher(given).matches() ? given : newId();
    ctx.put(ID_KEY, id);
    ctx.response().putHeader(HEADER, id);
    long started = System.nanoTime();
    ctx.addEndHandler(done -> {
      if (!ACCESS.isInfoEnabled()) {
        return;
      }
      String route = ctx.get(ROUTE_KEY);
      if (route == null) {
        route = "-";
      }
      int status = ctx.response().getStatusCode();
      String method = ctx.request().method().name();
      String millis = millis(System.nanoTime() - started);
      String line = new StringBuilder(96).append(method).append(' ').append(route).append(' ').append(status)
          .append(' ').append(millis).append(" ms request ").append(id)
          .append(done.succeeded() ? "" : " (connection closed)").toString();
      if (!KEY_VALUES) {
        ACCESS.info(line);
        return;
      }
      ACCESS.atInfo()
          .addKeyValue("request_id", id)
          .addKeyValue("method", method)
          .addKeyValue("route", route)
          .addKeyValue("status", status)
          .addKeyValue("duration_ms", millis)
          .log(line);
    });
    ctx.next();
  }

  /** Milliseconds with three decimals, without the cost of a formatter on every request. */
  static String millis(long nanos) {
    long micros = Math.max(0, nanos / 1000);
    long fraction = micros % 1000;
    return (micros / 1000) + (fraction < 10 ? ".00" : fraction < 100 ? ".0" : ".") + fraction;
  }

  /** The id of the request being handled, or "-". */
  public static String id(RoutingContext ctx) {
    String id = ctx.get(ID_KEY);
    return id == null ? "-" : id;
  }

  private static String newId() {
    return Long.toHexString(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
  }
}
