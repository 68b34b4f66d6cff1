package dev.tokenlease.platform;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/** The page shape of the vault's and the M2M API's listings. */
public final class Paging {
  private Paging() {}

  /** {@code {<field>: items, total, page, totalPages}}; no items means no pages. */
  public static JsonObject page(String field, JsonArray items, long total, int page, int limit) {
    return new JsonObject().put(field, items).put("total", total).put("page", page)
        .put("totalPages", (total + limit - 1) / limit);
  }
}
