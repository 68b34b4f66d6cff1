package dev.tokenlease.vault;

import dev.tokenlease.m2m.Guard;
import dev.tokenlease.platform.LocalBus;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.function.Function;

/** The vault's HTTP API; errors are the pool API's {@code {status, message}} bodies. */
public final class CredentialRoutes {
  private static final String ADMIN = "admin";
  private static final String USE = "credentials:use";

  private final EventBus bus;
  private final List<RequestInput.Declared> declared;
  private final Guard guard;

  public CredentialRoutes(EventBus bus, List<RequestInput.Declared> declared, Guard guard) {
    this.bus = bus;
    this.declared = declared;
    this.guard = guard;
  }

  public void mount(Router router) {
    add(router, HttpMethod.POST, "/api/credentials", ADMIN, this::create);
    add(router, HttpMethod.GET, "/api/credentials", ADMIN, this::list);
    add(router, HttpMethod.GET, "/api/credentials/current", USE, this::current);
    add(router, HttpMethod.POST, "/api/credentials/reencrypt", ADMIN, this::reencrypt);
    add(router, HttpMethod.GET, "/api/credentials/:id", ADMIN, this::get);
    add(router, HttpMethod.GET, "/api/credentials/:id/history", ADMIN, this::history);
    add(router, HttpMethod.POST, "/api/credentials/:id/retire", ADMIN, this::retire);
    add(router, HttpMethod.POST, "/api/credentials/:id/rotate", ADMIN, this::rotate);
    add(router, HttpMethod.POST, "/api/credentials/:id/usage", USE, this::usage);
  }

  /** Management needs {@code admin}; the calling side needs {@code credentials:use} (when auth is on). */
  private void add(Router router, HttpMethod method, String path, String scope, Handler<RoutingContext> handler) {
    RequestInput.route(router, declared, method, path, guard.require(scope), handler);
  }

  private void create(RoutingContext ctx) {
    CredentialMessages.Create request = CredentialMessages.create(RequestInput.body(ctx));
    this.<CredentialMessages.Info>call(CredentialAddresses.CREATE, request).onSuccess(info -> {
      ctx.response().setStatusCode(201);
      ctx.json(CredentialMessages.info(info));
    }).onFailure(ctx::fail);
  }

  private void list(RoutingContext ctx) {
    JsonObject input = RequestInput.query(ctx, "service", "environment", "status", "expiring_within", "page", "limit");
    answer(ctx, CredentialAddresses.LIST, CredentialMessages.list(input), CredentialMessages::page);
  }

  private void current(RoutingContext ctx) {
    JsonObject input = RequestInput.query(ctx, "service", "environment", "stage");
    CredentialMessages.Current request = CredentialMessages.current(input);
    this.<CredentialMessages.Value>call(CredentialAddresses.CURRENT, request).onSuccess(value -> {
      // The answer is a secret: no cache may keep it, as on the OAuth token endpoint (RFC 6749 §5.1).
      ctx.response().putHeader(HttpHeaders.CACHE_CONTROL, "no-store");
      ctx.json(CredentialMessages.value(value));
    }).onFailure(ctx::fail);
  }

  private void reencrypt(RoutingContext ctx) {
    answer(ctx, CredentialAddresses.REENCRYPT, new CredentialMessages.Reencrypt(), CredentialMessages::reencrypted);
  }

  private void get(RoutingContext ctx) {
    answer(ctx, CredentialAddresses.GET, new CredentialMessages.Get(id(ctx)), CredentialMessages::info);
  }

  private void history(RoutingContext ctx) {
    answer(ctx, CredentialAddresses.HISTORY, new CredentialMessages.History(id(ctx)), CredentialMessages::history);
  }

  private void retire(RoutingContext ctx) {
    answer(ctx, CredentialAddresses.RETIRE, new CredentialMessages.Retire(id(ctx)), CredentialMessages::info);
  }

  private void rotate(RoutingContext ctx) {
    answer(ctx, CredentialAddresses.ROTATE, new CredentialMessages.RotateNow(id(ctx)), CredentialMessages::info);
  }

  private void usage(RoutingContext ctx) {
    JsonObject input = RequestInput.path(ctx, RequestInput.body(ctx), "id");
    answer(ctx, CredentialAddresses.USAGE, CredentialMessages.usage(input), CredentialMessages::usageStats);
  }

  private static java.util.UUID id(RoutingContext ctx) {
    return CredentialMessages.id(RequestInput.path(ctx, new JsonObject(), "id"));
  }

  private <R> void answer(RoutingContext ctx, String address, Object request, Function<R, JsonObject> encode) {
    this.<R>call(address, request).onSuccess(reply -> ctx.json(encode.apply(reply))).onFailure(ctx::fail);
  }

  private <R> Future<R> call(String address, Object request) {
    return LocalBus.request(bus, address, request);
  }
}
