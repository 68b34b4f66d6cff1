package dev.tokenlease.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Closed-loop maximum throughput with wrk (Debian's package): as fast as the server answers. */
final class Wrk {
  /**
   * Requests per second over the run, how many answers were not 2xx/3xx or were errors, and the
   * rate of successful answers (what counts: a fast 503 is not a lease).
   */
  record Result(double requestsPerSecond, long requests, long failures, double goodput) {}

  private static final Pattern RPS = Pattern.compile("Requests/sec:\\s+([0-9.]+)");
  private static final Pattern TOTAL = Pattern.compile("(\\d+) requests in");
  private static final Pattern NON_2XX = Pattern.compile("Non-2xx or 3xx responses: (\\d+)");
  private static final Pattern SOCKET = Pattern.compile("Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)");

  private Wrk() {}

  static Result run(int port, Path script, Duration duration, int threads, int connections)
      throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("wrk", "-t" + threads, "-c" + connections,
        "-d" + duration.toSeconds() + "s", "-s", script.toString(), "http://127.0.0.1:" + port));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    if (!process.waitFor(duration.toSeconds() + 60, TimeUnit.SECONDS) || process.exitValue() != 0) {
      throw new IllegalStateException("wrk failed:\n" + output);
    }
    Matcher rps = RPS.matcher(output);
    Matcher total = TOTAL.matcher(output);
    if (!rps.find() || !total.find()) {
      throw new IllegalStateException("unexpected wrk output:\n" + output);
    }
    long failures = 0;
    Matcher non2xx = NON_2XX.matcher(output);
    if (non2xx.find()) {
      failures += Long.parseLong(non2xx.group(1));
    }
    Matcher socket = SOCKET.matcher(output);
    if (socket.find()) {
      for (int group = 1; group <= 4; group++) {
        failures += Long.parseLong(socket.group(group));
      }
    }
    double perSecond = Double.parseDouble(rps.group(1));
    long requests = Long.parseLong(total.group(1));
    double goodput = requests == 0 ? 0 : perSecond * (requests - failures) / requests;
    return new Result(perSecond, requests, failures, goodput);
  }

  /** Headers, a random version-4 UUID maker and a per-thread random seed. */
  private static final String PRELUDE = """
      wrk.headers["Content-Type"] = "application/json"
      local hex = "0123456789abcdef"
      local function uuid()
        local t = {}
        for i = 1, 32 do local r = math.random(1, 16); t[i] = hex:sub(r, r) end
        local s = table.concat(t)
        return s:sub(1, 8) .. "-" .. s:sub(9, 12) .. "-4" .. s:sub(14, 16) .. "-a" .. s:sub(18, 20) .. "-" .. s:sub(21, 32)
      end
      local function activation()
        return wrk.format("POST", "/api/tokens/activate", nil, '{"user_id":"' .. uuid() .. '"}')
      end
      init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end
      """;

  /** A script that activates a token for a fresh random user on every request. */
  static String activateScript() {
    return PRELUDE + "request = activation\n";
  }

  /**
   * Closed loops of activate and release on one pool: after an activation is answered, the next
   * request of that thread releases the token (the answer names token and user), else it activates
   * for a fresh user. In a {@code wait} pool with fewer tokens than connections, most activations
   * wait their turn. Every completed cycle is two requests.
   */
  static String waitCycleScript(String pool) {
    return PRELUDE + """
        local pending = {}
        request = function()
          local lease = table.remove(pending)
          if lease then
            return wrk.format("POST", "/api/pools/%1$s/tokens/" .. lease.token .. "/release", nil,
              '{"user_id":"' .. lease.user .. '"}')
          end
          return wrk.format("POST", "/api/pools/%1$s/tokens/activate", nil, '{"user_id":"' .. uuid() .. '"}')
        end
        response = function(status, headers, body)
          if status == 200 and body:find('"state"') == nil then
            local token = body:match('"token_id":"([^"]+)"')
            local user = body:match('"user_id":"([^"]+)"')
            if token and user then table.insert(pending, {token = token, user = user}) end
          end
        end
        """.formatted(pool);
  }

  /** Like {@link #activateScript()}, with a bearer token on every request. */
  static String authenticatedActivateScript(String accessToken) {
    return PRELUDE + "wrk.headers[\"Authorization\"] = \"Bearer " + accessToken + "\"\nrequest = activation\n";
  }

  /** 80 % GET of a token, 15 % activation, 5 % a token's usage history. */
  static String mixedScript(List<String> tokenIds) {
    StringBuilder ids = new StringBuilder();
    for (String id : tokenIds) {
      ids.append('"').append(id).append("\",");
    }
    return PRELUDE + """
        local ids = {%s}
        request = function()
          local roll = math.random(1, 100)
          local id = ids[math.random(1, #ids)]
          if roll <= 80 then return wrk.format("GET", "/api/tokens/" .. id, nil, nil) end
          if roll <= 95 then return activation() end
          return wrk.format("GET", "/api/tokens/" .. id .. "/usages", nil, nil)
        end
        """.formatted(ids);
  }
}
