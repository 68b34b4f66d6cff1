package dev.tokenlease.platform.http;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.HttpException;

/**
 * Reads the request body, whatever its content type, into one buffer of at most {@code limit}
 * bytes, for the routes to parse as JSON. Unlike the stock body handler it never decodes forms or
 * multipart bodies (which fail or hang on some methods and malformed input), and it rejects a
 * malformed query string on every method before any route runs.
 */
final class JsonBodyHandler implements Handler<RoutingContext> {
  private static final String BODY = JsonBodyHandler.class.getName() + ".body";

  private final long limit;

  JsonBodyHandler(long limit) {
    this.limit = limit;
  }

  /** The body read for this request; empty when there was none. */
  static Buffer body(RoutingContext ctx) {
    Buffer body = ctx.get(BODY);
    return body == null ? Buffer.buffer() : body;
  }

  @Override
  public void handle(RoutingContext ctx) {
    HttpServerRequest request = ctx.request();
    ctx.queryParams(); // throws HttpException(400) on a malformed query string
    String length = request.getHeader(HttpHeaders.CONTENT_LENGTH);
    if (length != null) {
      try {
        if (Long.parseLong(length.trim()) > limit) {
          ctx.fail(413);
          return;
        }
      } catch (NumberFormatException e) {
        ctx.fail(400);
        return;
      }
    }
    String expect = request.getHeader(HttpHeaders.EXPECT);
    if (expect != null) {
      if (!expect.equalsIgnoreCase("100-continue")) {
        ctx.fail(new HttpException(417, "Only 'Expect: 100-continue' is supported."));
        return;
      }
      if (request.version() != HttpVersion.HTTP_1_0) {
        ctx.response().writeContinue();
      }
    }
    if (request.isEnded()) {
      ctx.next();
      return;
    }
    Buffer body = Buffer.buffer();
    boolean[] failed = {false};
    request.exceptionHandler(error -> {
      if (!failed[0]) {
        failed[0] = true;
        // Broken framing (bad chunk sizes and the like) is the client's: answer 400 if we still can.
        ctx.fail(400, error);
      }
    });
    request.handler(chunk -> {
      if (failed[0]) {
        return;
      }
      if (body.length() + chunk.length() > limit) {
        failed[0] = true;
        ctx.fail(413);
        return;
      }
      body.appendBuffer(chunk);
    });
    request.endHandler(end -> {
      if (!failed[0]) {
        ctx.put(BODY, body);
        ctx.next();
      }
    });
    request.resume();
  }
}
