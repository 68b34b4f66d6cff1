package dev.tokenlease.platform.config;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;

/**
 * The service's settings, typed and checked. Keys are the environment variable names, in
 * {@code conf/config.json} as in the environment.
 *
 * @param pgUrl {@code postgresql://user:pass@host:port/db}, or null for the embedded server
 * @param httpInstances HTTP verticle instances; 0 in the file means one per core
 * @param overflow what the pool {@code default} does when full: {@code evict_oldest}, {@code reject} or {@code wait}
 * @param maxWait how long an activation of the pool {@code default} waits when it is full and waits
 * @param maxHold the longest a lease of the pool {@code default} may last, renewals included; null for no cap
 * @param maxPools the most pools there may be, {@code default} included
 * @param maxWaiters the most activations waiting at once, over all pools
 */
public record AppConfig(
    int httpPort,
    int httpInstances,
    String pgUrl,
    int pgPoolSize,
    Path dataDir,
    int poolSize,
    Duration leaseTtl,
    String overflow,
    Duration maxWait,
    Duration maxHold,
    int maxLeasesPerUser,
    int maxPools,
    int maxWaiters,
    Duration sweepInterval,
    AckMode ackMode,
    Duration flushInterval,
    int batchSize,
    int writesInFlight,
    int queueCapacity,
    Duration ackTimeout,
    Duration maxLag,
    ClusterConfig cluster,
    VaultConfig vault,
    AuthConfig auth,
    EventsConfig events,
    TlsConfig tls) {

  /**
   * HTTPS for the listener, with HTTP/2 offered by ALPN.
   *
   * @param certFile the PEM certificate chain, leaf first
   * @param keyFile the PEM private key (PKCS#8 or PKCS#1)
   */
  public record TlsConfig(Path certFile, Path keyFile) {}

  /**
   * Clustering of the event bus.
   *
   * @param members other nodes to join, {@code host:port}; empty starts a cluster of one
   * @param forwardTimeout how long a node holds a request for a pool whose owner it cannot reach
   *     (a takeover under way) before it answers 503
   */
  public record ClusterConfig(boolean enabled, String host, int port, java.util.List<String> members,
      Duration forwardTimeout) {
    public ClusterConfig(boolean enabled, String host, int port, java.util.List<String> members) {
      this(enabled, host, port, members, Duration.ofSeconds(5));
    }

    /** This node's id: its cluster address, stable for the process's life. */
    public String nodeId() {
      return host + ":" + port;
    }
  }

  /**
   * The credential vault's settings.
   *
   * @param keysetJson the Tink keyset that seals vault secrets, or null (the vault stays locked)
   */
  public record VaultConfig(String keysetJson, Duration rotationInterval, Duration rotationWindow, int maxAttempts,
      Duration retryBackoff, Duration providerTimeout) {
    /** Never prints the keyset. */
    @Override
    public String toString() {
      return "VaultConfig[keyset=" + (keysetJson == null ? "none" : "(secret)") + ", rotationInterval=" + rotationInterval
          + ", rotationWindow=" + rotationWindow + ", maxAttempts=" + maxAttempts + ", retryBackoff=" + retryBackoff
          + ", providerTimeout=" + providerTimeout + "]";
    }
  }

  /**
   * Machine-to-machine clients, bearer tokens and rate limits.
   *
   * @param required whether the pool and vault APIs need a bearer token
   * @param adminClientId the bootstrap admin client, or null (then no admin exists until configured)
   * @param ratePerSecond the general limit per client (per IP when unauthenticated); 0 turns it off
   * @param oauthRatePerSecond the token endpoint's limit per client id and per IP
   * @param publicUrl the URL callers reach the service at, the OAuth issuer (no trailing slash), or
   *     null to derive it from each request
   */
  public record AuthConfig(boolean required, String adminClientId, String adminClientSecret, Duration tokenTtl,
      int ratePerSecond, int rateBurst, int oauthRatePerSecond, int oauthRateBurst, String publicUrl, JwtConfig jwt) {
    /** Without a configured public URL, with opaque tokens. */
    public AuthConfig(boolean required, String adminClientId, String adminClientSecret, Duration tokenTtl,
        int ratePerSecond, int rateBurst, int oauthRatePerSecond, int oauthRateBurst) {
      this(required, adminClientId, adminClientSecret, tokenTtl, ratePerSecond, rateBurst, oauthRatePerSecond,
          oauthRateBurst, null, new JwtConfig(false, Duration.ofDays(30), null));
    }

    /** Never prints the admin secret. */
    @Override
    public String toString() {
      return "AuthConfig[required=" + required + ", adminClientId=" + adminClientId + ", adminClientSecret="
          + (adminClientSecret == null ? "none" : "(secret)") + ", tokenTtl=" + tokenTtl + ", ratePerSecond="
          + ratePerSecond + ", rateBurst=" + rateBurst + ", oauthRatePerSecond=" + oauthRatePerSecond
          + ", oauthRateBurst=" + oauthRateBurst + ", publicUrl=" + publicUrl + ", jwt=" + jwt + "]";
    }
  }

  /**
   * JWT access tokens (RFC 9068) instead of opaque ones.
   *
   * @param enabled whether {@code POST /oauth/token} issues signed JWTs ({@code TOKENS_M2M_TOKEN_FORMAT=jwt})
   * @param keyRotation how long one signing key signs before its successor takes over
   * @param audience the {@code aud} claim, or null for the issuer (this service is the resource server)
   */
  public record JwtConfig(boolean enabled, Duration keyRotation, String audience) {}

  /**
   * The live stream of committed changes ({@code GET /api/events}).
   *
   * @param ringSize how many of the latest changes each HTTP verticle keeps for clients that resume
   * @param keepAlive how often a comment line goes to every stream; below the HTTP idle timeout (45 s)
   * @param writeQueueBytes how much may wait unsent for one client before it counts as too slow
   */
  public record EventsConfig(int ringSize, Duration keepAlive, int writeQueueBytes, int maxClients) {}

  public static final String HTTP_PORT = "TOKENS_HTTP_PORT";
  public static final String HTTP_INSTANCES = "TOKENS_HTTP_INSTANCES";
  public static final String PG_URL = "TOKENS_PG_URL";
  public static final String PG_POOL_SIZE = "TOKENS_PG_POOL_SIZE";
  public static final String DATA_DIR = "TOKENS_DATA_DIR";
  public static final String POOL_SIZE = "TOKENS_POOL_SIZE";
  public static final String LEASE_TTL = "TOKENS_POOL_LEASE_TTL";
  /** What an activation on a full pool does: {@code evict_oldest} (the seed's) or {@code reject}. */
  public static final String OVERFLOW = "TOKENS_POOL_OVERFLOW";
  /** The most leases one user may hold at once; 0 for no limit. */
  public static final String MAX_LEASES_PER_USER = "TOKENS_POOL_MAX_LEASES_PER_USER";
  public static final String MAX_WAIT = "TOKENS_POOL_MAX_WAIT";
  public static final String MAX_HOLD = "TOKENS_POOL_MAX_HOLD";
  public static final String MAX_POOLS = "TOKENS_MAX_POOLS";
  public static final String MAX_WAITERS = "TOKENS_MAX_WAITERS";
  public static final String TLS_CERT_FILE = "TOKENS_TLS_CERT_FILE";
  public static final String PUBLIC_URL = "TOKENS_PUBLIC_URL";
  /** {@code text} or {@code json}; read by {@code Main} before logging starts, checked here. */
  public static final String LOG_FORMAT = "TOKENS_LOG_FORMAT";
  public static final String TLS_KEY_FILE = "TOKENS_TLS_KEY_FILE";
  /** The longest an activation may wait for a token, in any pool. */
  public static final Duration LONGEST_WAIT = Duration.ofSeconds(30);
  public static final String SWEEP_INTERVAL = "TOKENS_POOL_SWEEP_INTERVAL";
  public static final String ACK = "TOKENS_PERSISTENCE_ACK";
  public static final String FLUSH_INTERVAL = "TOKENS_PERSISTENCE_FLUSH_INTERVAL";
  public static final String BATCH_SIZE = "TOKENS_PERSISTENCE_BATCH_SIZE";
  public static final String IN_FLIGHT = "TOKENS_PERSISTENCE_IN_FLIGHT";
  public static final String QUEUE_CAPACITY = "TOKENS_PERSISTENCE_QUEUE_CAPACITY";
  public static final String ACK_TIMEOUT = "TOKENS_PERSISTENCE_ACK_TIMEOUT";
  public static final String MAX_LAG = "TOKENS_PERSISTENCE_MAX_LAG";
  public static final String CLUSTER = "TOKENS_CLUSTER";
  public static final String CLUSTER_HOST = "TOKENS_CLUSTER_HOST";
  public static final String CLUSTER_PORT = "TOKENS_CLUSTER_PORT";
  public static final String CLUSTER_MEMBERS = "TOKENS_CLUSTER_MEMBERS";
  public static final String CLUSTER_FORWARD_TIMEOUT = "TOKENS_CLUSTER_FORWARD_TIMEOUT";
  public static final String VAULT_KEYSET = "TOKENS_VAULT_KEYSET";
  public static final String VAULT_KEYSET_FILE = "TOKENS_VAULT_KEYSET_FILE";
  public static final String VAULT_ROTATION_INTERVAL = "TOKENS_VAULT_ROTATION_INTERVAL";
  public static final String VAULT_ROTATION_WINDOW = "TOKENS_VAULT_ROTATION_WINDOW";
  public static final String VAULT_MAX_ATTEMPTS = "TOKENS_VAULT_ROTATION_MAX_ATTEMPTS";
  public static final String VAULT_RETRY_BACKOFF = "TOKENS_VAULT_ROTATION_BACKOFF";
  public static final String VAULT_PROVIDER_TIMEOUT = "TOKENS_VAULT_PROVIDER_TIMEOUT";
  public static final String AUTH_REQUIRED = "TOKENS_AUTH_REQUIRED";
  public static final String ADMIN_CLIENT_ID = "TOKENS_ADMIN_CLIENT_ID";
  public static final String ADMIN_CLIENT_SECRET = "TOKENS_ADMIN_CLIENT_SECRET";
  public static final String M2M_TOKEN_TTL = "TOKENS_M2M_TOKEN_TTL";
  /** {@code opaque} (the default) or {@code jwt} (RFC 9068 access tokens, verifiable offline). */
  public static final String M2M_TOKEN_FORMAT = "TOKENS_M2M_TOKEN_FORMAT";
  public static final String M2M_JWT_KEY_ROTATION = "TOKENS_M2M_JWT_KEY_ROTATION";
  public static final String M2M_JWT_AUDIENCE = "TOKENS_M2M_JWT_AUDIENCE";
  public static final String RATE_LIMIT = "TOKENS_RATE_LIMIT_PER_SECOND";
  public static final String RATE_BURST = "TOKENS_RATE_LIMIT_BURST";
  public static final String OAUTH_RATE_LIMIT = "TOKENS_OAUTH_RATE_LIMIT_PER_SECOND";
  public static final String OAUTH_RATE_BURST = "TOKENS_OAUTH_RATE_LIMIT_BURST";
  public static final String EVENTS_RING = "TOKENS_EVENTS_RING";
  public static final String EVENTS_KEEP_ALIVE = "TOKENS_EVENTS_KEEP_ALIVE";
  public static final String EVENTS_WRITE_QUEUE = "TOKENS_EVENTS_WRITE_QUEUE";
  public static final String EVENTS_MAX_CLIENTS = "TOKENS_EVENTS_MAX_CLIENTS";
  /** Client ids, the admin's included: letters, digits and {@code . _ : -}, at most 128. */
  public static final String CLIENT_ID_PATTERN = "[A-Za-z0-9._:-]{1,128}";

  /** Every key this record reads; the environment store copies only these. */
  public static final java.util.List<String> KEYS = java.util.List.of(
      HTTP_PORT, HTTP_INSTANCES, PG_URL, PG_POOL_SIZE, DATA_DIR, POOL_SIZE, LEASE_TTL, OVERFLOW, MAX_LEASES_PER_USER,
      MAX_WAIT, MAX_HOLD, MAX_POOLS, MAX_WAITERS, TLS_CERT_FILE, TLS_KEY_FILE, PUBLIC_URL, LOG_FORMAT,
      SWEEP_INTERVAL, ACK, FLUSH_INTERVAL, BATCH_SIZE, IN_FLIGHT, QUEUE_CAPACITY, ACK_TIMEOUT, MAX_LAG, CLUSTER, CLUSTER_HOST, CLUSTER_PORT,
      CLUSTER_MEMBERS, CLUSTER_FORWARD_TIMEOUT, VAULT_KEYSET, VAULT_KEYSET_FILE,
      VAULT_ROTATION_INTERVAL, VAULT_ROTATION_WINDOW, VAULT_MAX_ATTEMPTS, VAULT_RETRY_BACKOFF, VAULT_PROVIDER_TIMEOUT,
      AUTH_REQUIRED, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, M2M_TOKEN_TTL, M2M_TOKEN_FORMAT, M2M_JWT_KEY_ROTATION,
      M2M_JWT_AUDIENCE, RATE_LIMIT, RATE_BURST, OAUTH_RATE_LIMIT,
      OAUTH_RATE_BURST, EVENTS_RING, EVENTS_KEEP_ALIVE, EVENTS_WRITE_QUEUE, EVENTS_MAX_CLIENTS);

  static final int MAX_POOL_SIZE = 10_000_000;

  /** Reads and checks every setting; the first bad one throws, naming its variable. */
  public static AppConfig fromJson(JsonObject json) {
    logFormat(json);
    int instances = intIn(json, HTTP_INSTANCES, 0, 64);
    String url = text(json, PG_URL);
    if (url != null && !url.startsWith("postgresql://") && !url.startsWith("postgres://")) {
      throw new ConfigException(PG_URL + ": expected postgresql://user:pass@host:port/db, got '" + url + "'");
    }
    String dir = text(json, DATA_DIR);
    return new AppConfig(
        intIn(json, HTTP_PORT, 0, 65535),
        instances == 0 ? Runtime.getRuntime().availableProcessors() : instances,
        url,
        intIn(json, PG_POOL_SIZE, 1, 100),
        dir == null ? defaultDataDir(System.getenv()) : Path.of(dir),
        intIn(json, POOL_SIZE, 1, MAX_POOL_SIZE),
        positiveDuration(json, LEASE_TTL),
        overflow(json),
        durationIn(json, MAX_WAIT, Duration.ofMillis(1), LONGEST_WAIT),
        maxHold(json),
        intIn(json, MAX_LEASES_PER_USER, 0, MAX_POOL_SIZE),
        intIn(json, MAX_POOLS, 1, 100_000),
        intIn(json, MAX_WAITERS, 0, 1_000_000),
        positiveDuration(json, SWEEP_INTERVAL),
        ackMode(json),
        positiveDuration(json, FLUSH_INTERVAL),
        intIn(json, BATCH_SIZE, 1, 100_000),
        intIn(json, IN_FLIGHT, 1, 16),
        intIn(json, QUEUE_CAPACITY, 1, 10_000_000),
        durationIn(json, ACK_TIMEOUT, Duration.ofMillis(100), Duration.ofMinutes(1)),
        durationIn(json, MAX_LAG, Duration.ofMillis(100), Duration.ofMinutes(1)),
        new ClusterConfig(bool(json, CLUSTER), required(json, CLUSTER_HOST), intIn(json, CLUSTER_PORT, 1, 65535),
            members(json), durationIn(json, CLUSTER_FORWARD_TIMEOUT, Duration.ofMillis(100), Duration.ofMinutes(1))),
        new VaultConfig(keyset(json), positiveDuration(json, VAULT_ROTATION_INTERVAL),
            positiveDuration(json, VAULT_ROTATION_WINDOW), intIn(json, VAULT_MAX_ATTEMPTS, 1, 100),
            positiveDuration(json, VAULT_RETRY_BACKOFF), positiveDuration(json, VAULT_PROVIDER_TIMEOUT)),
        auth(json),
        // The keep-alive must beat the HTTP server's 45 s idle timeout, or idle streams would be cut.
        new EventsConfig(intIn(json, EVENTS_RING, 1, 1_000_000),
            durationIn(json, EVENTS_KEEP_ALIVE, Duration.ofMillis(10), Duration.ofSeconds(25)),
            intIn(json, EVENTS_WRITE_QUEUE, 1024, 64 * 1024 * 1024),
            intIn(json, EVENTS_MAX_CLIENTS, 1, 100_000)),
        tls(json));
  }

  private static void logFormat(JsonObject json) {
    String value = raw(json, LOG_FORMAT).toLowerCase(Locale.ROOT);
    if (!value.equals("text") && !value.equals("json")) {
      throw new ConfigException(LOG_FORMAT + ": expected 'text' or 'json', got '" + raw(json, LOG_FORMAT) + "'");
    }
  }

  /** Both files or neither; each must be a readable PEM file of the right kind. */
  private static TlsConfig tls(JsonObject json) {
    String cert = text(json, TLS_CERT_FILE);
    String key = text(json, TLS_KEY_FILE);
    if (cert == null && key == null) {
      return null;
    }
    if (cert == null || key == null) {
      throw new ConfigException((cert == null ? TLS_CERT_FILE : TLS_KEY_FILE) + ": set it too, or neither: HTTPS needs "
          + TLS_CERT_FILE + " and " + TLS_KEY_FILE);
    }
    return new TlsConfig(pem(TLS_CERT_FILE, cert, "CERTIFICATE"), pem(TLS_KEY_FILE, key, "PRIVATE KEY"));
  }

  private static Path pem(String key, String file, String kind) {
    Path path = Path.of(file);
    String content;
    try {
      content = java.nio.file.Files.readString(path, java.nio.charset.StandardCharsets.US_ASCII);
    } catch (java.io.IOException | java.io.UncheckedIOException e) {
      throw new ConfigException(key + ": cannot read '" + file + "' (" + e.getClass().getSimpleName() + ")");
    }
    if (!java.util.regex.Pattern.compile("-----BEGIN [A-Z ]*" + kind + "-----").matcher(content).find()) {
      throw new ConfigException(key + ": '" + file + "' is not a PEM file with a " + kind.toLowerCase(Locale.ROOT));
    }
    return path;
  }

  /**
   * Where the embedded PostgreSQL keeps its data when {@code TOKENS_DATA_DIR} is not set: the XDG
   * data directory ({@code $XDG_DATA_HOME}, else {@code $HOME/.local/share}), as the user's shell
   * sees it (Java's {@code user.home} ignores {@code HOME}).
   */
  public static Path defaultDataDir(java.util.Map<String, String> env) {
    String xdg = env.get("XDG_DATA_HOME");
    if (xdg != null && Path.of(xdg).isAbsolute()) {
      return Path.of(xdg, "token-service");
    }
    String home = env.get("HOME");
    if (home == null || home.isBlank()) {
      home = System.getProperty("user.home");
    }
    return Path.of(home, ".local", "share", "token-service");
  }

  /**
   * The {@code TOKENS_*} names in the environment that no setting reads, each with the setting it
   * most likely meant (or null): a misspelled variable would otherwise be ignored in silence.
   */
  public static java.util.Map<String, String> unknownSettings(java.util.Map<String, String> env) {
    java.util.Map<String, String> unknown = new java.util.TreeMap<>();
    for (String name : env.keySet()) {
      if (name.startsWith("TOKENS_") && !KEYS.contains(name) && !name.startsWith("TOKENS_TEST_")) {
        String closest = null;
        int best = 4;
        for (String key : KEYS) {
          int distance = editDistance(name, key);
          if (distance < best) {
            best = distance;
            closest = key;
          }
        }
        unknown.put(name, closest);
      }
    }
    return unknown;
  }

  private static int editDistance(String a, String b) {
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.length()];
  }

  private static AuthConfig auth(JsonObject json) {
    String id = text(json, ADMIN_CLIENT_ID);
    String secret = text(json, ADMIN_CLIENT_SECRET);
    if (id != null && !id.matches(CLIENT_ID_PATTERN)) {
      throw new ConfigException(ADMIN_CLIENT_ID + ": expected 1 to 128 letters, digits or . _ : -, got '" + id + "'");
    }
    if ((id == null) != (secret == null)) {
      throw new ConfigException((id == null ? ADMIN_CLIENT_ID : ADMIN_CLIENT_SECRET) + ": set both "
          + ADMIN_CLIENT_ID + " and " + ADMIN_CLIENT_SECRET + ", or neither");
    }
    if (secret != null && (secret.length() < 32 || secret.length() > 512)) {
      // The secret is never echoed; only its length is judged.
      throw new ConfigException(ADMIN_CLIENT_SECRET + ": must be 32 to 512 characters (for example: openssl rand -base64 32)");
    }
    Duration ttl = positiveDuration(json, M2M_TOKEN_TTL);
    if (ttl.compareTo(Duration.ofSeconds(1)) < 0 || ttl.compareTo(Duration.ofDays(1)) > 0) {
      throw new ConfigException(M2M_TOKEN_TTL + ": expected from PT1S to P1D, got '" + raw(json, M2M_TOKEN_TTL) + "'");
    }
    return new AuthConfig(bool(json, AUTH_REQUIRED), id, secret, ttl,
        intIn(json, RATE_LIMIT, 0, 1_000_000), intIn(json, RATE_BURST, 1, 1_000_000),
        intIn(json, OAUTH_RATE_LIMIT, 1, 1_000_000), intIn(json, OAUTH_RATE_BURST, 1, 1_000_000), publicUrl(json),
        jwt(json));
  }

  private static JwtConfig jwt(JsonObject json) {
    String format = raw(json, M2M_TOKEN_FORMAT).toLowerCase(Locale.ROOT);
    if (!format.equals("opaque") && !format.equals("jwt")) {
      throw new ConfigException(M2M_TOKEN_FORMAT + ": expected 'opaque' or 'jwt', got '" + raw(json, M2M_TOKEN_FORMAT) + "'");
    }
    Duration rotation = durationIn(json, M2M_JWT_KEY_ROTATION, Duration.ofSeconds(2), Duration.ofDays(366));
    String audience = text(json, M2M_JWT_AUDIENCE);
    if (audience != null && !audience.matches("[\\x21-\\x7e]{1,256}")) {
      throw new ConfigException(M2M_JWT_AUDIENCE + ": expected 1 to 256 printable characters without spaces, got '"
          + audience + "'");
    }
    return new JwtConfig(format.equals("jwt"), rotation, audience);
  }

  /** An absolute http(s) URL with no query or fragment; a trailing slash is dropped. */
  private static String publicUrl(JsonObject json) {
    String value = text(json, PUBLIC_URL);
    if (value == null) {
      return null;
    }
    try {
      java.net.URI uri = new java.net.URI(value);
      boolean web = "http".equals(uri.getScheme()) || "https".equals(uri.getScheme());
      if (web && uri.getHost() != null && uri.getRawQuery() == null && uri.getRawFragment() == null
          && uri.getRawUserInfo() == null) {
        return value.endsWith("/") ? value.substring(0, value.length() - 1) : value;
      }
    } catch (java.net.URISyntaxException e) {
      // reported below
    }
    throw new ConfigException(PUBLIC_URL + ": expected an absolute http(s) URL such as https://tokens.example.com, got '"
        + value + "'");
  }

  private static boolean bool(JsonObject json, String key) {
    String value = raw(json, key).toLowerCase(Locale.ROOT);
    if (value.equals("true") || value.equals("false")) {
      return Boolean.parseBoolean(value);
    }
    throw new ConfigException(key + ": expected true or false, got '" + value + "'");
  }

  private static String required(JsonObject json, String key) {
    String value = text(json, key);
    if (value == null) {
      throw new ConfigException(key + ": must not be empty");
    }
    return value;
  }

  private static java.util.List<String> members(JsonObject json) {
    String value = text(json, CLUSTER_MEMBERS);
    if (value == null) {
      return java.util.List.of();
    }
    java.util.List<String> members = new java.util.ArrayList<>();
    for (String member : value.split(",")) {
      String trimmed = member.trim();
      if (!trimmed.matches("[A-Za-z0-9.\\-]+(:\\d{1,5})?")) {
        throw new ConfigException(CLUSTER_MEMBERS + ": expected host[:port],host[:port],…, got '" + value + "'");
      }
      members.add(trimmed);
    }
    return java.util.List.copyOf(members);
  }

  /** What a bad keyset setting is told; the vault's own check (at start-up) uses the same words. */
  public static final String NOT_A_KEYSET = "not a valid Tink AES-GCM keyset in JSON form (make one with VaultKeys new)";

  /**
   * The shape of a Tink keyset in JSON ({@code primaryKeyId} and a non-empty {@code key} array of
   * objects with {@code keyData}); the vault proves the key material itself before it starts.
   */
  private static boolean looksLikeKeyset(String keyset) {
    try {
      JsonObject json = new JsonObject(keyset);
      Object keys = json.getValue("key");
      return json.getValue("primaryKeyId") instanceof Number && keys instanceof io.vertx.core.json.JsonArray array
          && !array.isEmpty() && array.stream().allMatch(k -> k instanceof JsonObject o && o.getValue("keyData") instanceof JsonObject);
    } catch (RuntimeException e) {
      return false;
    }
  }

  /** The vault keyset, inline or from a file, checked to have a keyset's shape; null if none. */
  private static String keyset(JsonObject json) {
    String inline = text(json, VAULT_KEYSET);
    String file = text(json, VAULT_KEYSET_FILE);
    if (inline != null && file != null) {
      throw new ConfigException(VAULT_KEYSET + ": set it or " + VAULT_KEYSET_FILE + ", not both");
    }
    String key = inline != null ? VAULT_KEYSET : VAULT_KEYSET_FILE;
    String keyset = inline;
    if (file != null) {
      try {
        keyset = java.nio.file.Files.readString(Path.of(file));
      } catch (java.io.IOException | RuntimeException e) {
        throw new ConfigException(VAULT_KEYSET_FILE + ": cannot read '" + file + "' (" + e.getClass().getSimpleName() + ")");
      }
    }
    if (keyset == null) {
      return null;
    }
    if (!looksLikeKeyset(keyset)) {
      // The keyset is secret: say what is wrong, never echo it.
      throw new ConfigException(key + ": " + NOT_A_KEYSET);
    }
    return keyset;
  }

  private static String raw(JsonObject json, String key) {
    Object value = json.getValue(key);
    if (value == null) {
      throw new ConfigException(key + ": not set (conf/config.json should give a default)");
    }
    return value.toString().trim();
  }

  private static String text(JsonObject json, String key) {
    Object value = json.getValue(key);
    String text = value == null ? "" : value.toString().trim();
    return text.isEmpty() ? null : text;
  }

  private static int intIn(JsonObject json, String key, int min, int max) {
    String value = raw(json, key);
    try {
      int parsed = Integer.parseInt(value);
      if (parsed >= min && parsed <= max) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new ConfigException(key + ": expected an integer from " + min + " to " + max + ", got '" + value + "'");
  }

  private static Duration positiveDuration(JsonObject json, String key) {
    String value = raw(json, key);
    try {
      Duration parsed = Duration.parse(value);
      if (!parsed.isNegative() && !parsed.isZero() && parsed.toMillis() > 0) {
        return parsed;
      }
    } catch (DateTimeParseException e) {
      // reported below
    }
    throw new ConfigException(key + ": expected a positive ISO-8601 duration of at least 1 ms such as PT2M, got '" + value + "'");
  }

  private static Duration durationIn(JsonObject json, String key, Duration min, Duration max) {
    Duration value = positiveDuration(json, key);
    if (value.compareTo(min) < 0 || value.compareTo(max) > 0) {
      throw new ConfigException(key + ": expected from " + min + " to " + max + ", got '" + raw(json, key) + "'");
    }
    return value;
  }

  private static String overflow(JsonObject json) {
    String value = raw(json, OVERFLOW).toLowerCase(Locale.ROOT);
    if (!value.equals("evict_oldest") && !value.equals("reject") && !value.equals("wait")) {
      throw new ConfigException(OVERFLOW + ": expected 'evict_oldest', 'reject' or 'wait', got '" + raw(json, OVERFLOW) + "'");
    }
    return value;
  }

  /** Empty for no cap; else at least the lease TTL. */
  private static Duration maxHold(JsonObject json) {
    if (text(json, MAX_HOLD) == null) {
      return null;
    }
    Duration value = positiveDuration(json, MAX_HOLD);
    if (value.compareTo(positiveDuration(json, LEASE_TTL)) < 0) {
      throw new ConfigException(MAX_HOLD + ": must be at least " + LEASE_TTL + " (" + raw(json, LEASE_TTL) + "), got '"
          + raw(json, MAX_HOLD) + "'");
    }
    return value;
  }

  private static AckMode ackMode(JsonObject json) {
    String value = raw(json, ACK);
    try {
      return AckMode.valueOf(value.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new ConfigException(ACK + ": expected 'durable' or 'memory', got '" + value + "'");
    }
  }
}
