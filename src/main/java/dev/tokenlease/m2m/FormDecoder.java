package dev.tokenlease.m2m;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * application/x-www-form-urlencoded, exactly: only {@code &} separates parameters ({@code ;} is an
 * ordinary character, as in scope values), {@code +} is a space, a malformed escape is an error, and
 * so is a parameter beyond the limit (never dropped silently). Used for OAuth request bodies and the
 * M2M admin API's query strings.
 */
final class FormDecoder {
  /** Why a form or query string was refused. */
  static final class Malformed extends RuntimeException {
    Malformed(String reason) {
      super(reason, null, false, false);
    }
  }

  private FormDecoder() {}

  /** Parameters in order of first appearance, each with every value given. */
  static Map<String, List<String>> decode(String text, int maxParams) {
    Map<String, List<String>> params = new LinkedHashMap<>();
    if (text == null || text.isEmpty()) {
      return params;
    }
    int count = 0;
    for (String pair : text.split("&", -1)) {
      if (pair.isEmpty()) {
        continue;
      }
      if (++count > maxParams) {
        throw new Malformed("More than " + maxParams + " parameters");
      }
      int equals = pair.indexOf('=');
      String name = decodeComponent(equals < 0 ? pair : pair.substring(0, equals));
      String value = equals < 0 ? "" : decodeComponent(pair.substring(equals + 1));
      params.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
    }
    return params;
  }

  private static String decodeComponent(String text) {
    try {
      return URLDecoder.decode(text, StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      throw new Malformed("Malformed percent-encoding");
    }
  }
}
