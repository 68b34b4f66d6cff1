package dev.tokenlease.m2m;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.InsecureSecretKeyAccess;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.RegistryConfiguration;
import com.google.crypto.tink.TinkJsonProtoKeysetFormat;
import com.google.crypto.tink.aead.AeadConfig;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.tokenlease.m2m.AuthStore.StoredToken;
import dev.tokenlease.platform.config.AppConfig.JwtConfig;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Date;
import java.util.List;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The keys that sign JWT access tokens (RFC 9068), kept in {@code m2m_signing_keys} so that every
 * node signs with the same key and a restart keeps the keys resource servers already trust. ES256
 * (P-256) keys, made with Nimbus JOSE+JWT. Each key signs for {@code TOKENS_M2M_JWT_KEY_ROTATION};
 * its successor is made and published {@link #lead} before it takes over, and a retired key stays
 * published for one token lifetime plus a clock-skew allowance, so that a verifier that caches the
 * key set never meets a live token whose key it cannot find. Used on the auth verticle's event loop
 * only; the published set goes to {@link Auth#publishKeys} for the HTTP verticles to serve.
 */
final class SigningKeys {
  static final String ALGORITHM = "ES256";
  static final JOSEObjectType ACCESS_TOKEN_TYPE = new JOSEObjectType("at+jwt");
  private static final Logger LOG = LoggerFactory.getLogger(SigningKeys.class);
  /** Serializes key maintenance across nodes: one transaction decides, the others see its keys. */
  private static final long LOCK = 0x6d326d6b657973L; // "m2mkeys"
  private static final String ASSOCIATED = "token-service m2m signing key ";

  /** A key this node may sign with (the private part opened). */
  private record SigningKey(String kid, ECKey key, ECDSASigner signer, Instant activatesAt, Instant retiresAt) {}

  /** A stored key, private part still as stored. */
  private record Stored(String kid, String publicJwk, byte[] privateJwk, Long sealedWith, Instant activatesAt,
      Instant retiresAt) {}

  private final JwtConfig config;
  private final Duration tokenTtl;
  private final Pool pg;
  private final Aead sealer;
  private final Long sealerKeyId;
  private List<SigningKey> signing = List.of();

  /**
   * @param sealingKeysetJson the vault's Tink keyset ({@code TOKENS_VAULT_KEYSET[_FILE]}), which
   *     seals the private keys kept in the database, or null (then they are kept unsealed)
   */
  SigningKeys(JwtConfig config, Duration tokenTtl, Pool pg, String sealingKeysetJson) {
    this.config = config;
    this.tokenTtl = tokenTtl;
    this.pg = pg;
    if (sealingKeysetJson == null) {
      sealer = null;
      sealerKeyId = null;
    } else {
      try {
        AeadConfig.register();
        KeysetHandle keyset = TinkJsonProtoKeysetFormat.parseKeyset(sealingKeysetJson,
            InsecureSecretKeyAccess.get());
        sealer = keyset.getPrimitive(RegistryConfiguration.get(), Aead.class);
        sealerKeyId = Integer.toUnsignedLong(keyset.getPrimary().getId());
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("The vault keyset cannot seal signing keys", e);
      }
    }
  }

  boolean sealed() {
    return sealer != null;
  }

  /** How long before a key takes over its successor is made and published. */
  Duration lead() {
    Duration half = config.keyRotation().dividedBy(2);
    return half.compareTo(Duration.ofDays(1)) > 0 ? Duration.ofDays(1) : half;
  }

  /** How long a retired key stays published: the longest a token it signed may live, plus skew. */
  Duration publishedAfterRetirement() {
    Duration skew = tokenTtl.compareTo(Duration.ofMinutes(1)) < 0 ? tokenTtl : Duration.ofMinutes(1);
    return tokenTtl.plus(skew);
  }

  /** How often {@link #maintain} should run: often enough that a successor is seen well before it signs. */
  Duration period() {
    long millis = Math.max(500, Math.min(60_000, lead().toMillis() / 4));
    return Duration.ofMillis(millis);
  }

  /**
   * Brings the stored keys up to date (when JWTs are issued: a signing key for now and, within
   * {@link #lead}, its successor; keys past publication are deleted) and loads them. Answers the
   * public key set to publish.
   */
  Future<JsonObject> maintain(Instant now) {
    return pg.withTransaction(tx -> tx.preparedQuery("SELECT pg_advisory_xact_lock($1)").execute(Tuple.of(LOCK))
        .compose(v -> tx.query("SELECT kid, public_jwk, private_jwk, sealed_with, activates_at, retires_at "
            + "FROM m2m_signing_keys ORDER BY activates_at").execute())
        .compose(rows -> {
          List<Stored> keys = new ArrayList<>();
          rows.forEach(row -> keys.add(stored(row)));
          return config.enabled() ? update(tx, keys, now) : Future.succeededFuture(keys);
        }))
        .map(keys -> {
          load(keys, now);
          return published(keys, now);
        });
  }

  private Future<List<Stored>> update(SqlConnection tx, List<Stored> keys, Instant now) {
    List<Stored> kept = new ArrayList<>();
    List<String> gone = new ArrayList<>();
    for (Stored key : keys) {
      if (now.isBefore(key.retiresAt().plus(publishedAfterRetirement()))) {
        kept.add(key);
      } else {
        gone.add(key.kid());
      }
    }
    List<Stored> made = new ArrayList<>();
    try {
      if (kept.stream().noneMatch(key -> activeAt(key.activatesAt(), key.retiresAt(), now))) {
        made.add(generate(now, now));
      }
      Stored last = java.util.stream.Stream.concat(kept.stream(), made.stream())
          .max(Comparator.comparing(Stored::retiresAt)).orElseThrow();
      if (!now.plus(lead()).isBefore(last.retiresAt())) {
        made.add(generate(last.retiresAt(), now));
      }
    } catch (JOSEException | GeneralSecurityException e) {
      return Future.failedFuture(e);
    }
    Future<?> deleted = gone.isEmpty() ? Future.succeededFuture()
        : tx.preparedQuery("DELETE FROM m2m_signing_keys WHERE kid = ANY($1)")
            .execute(Tuple.of(gone.toArray(new String[0])));
    return deleted.compose(v -> {
      if (made.isEmpty()) {
        return Future.succeededFuture();
      }
      List<Tuple> batch = new ArrayList<>();
      for (Stored key : made) {
        batch.add(Tuple.of(key.kid(), ALGORITHM, key.publicJwk(), Buffer.buffer(key.privateJwk()), key.sealedWith(),
            time(now), time(key.activatesAt()), time(key.retiresAt())));
      }
      return tx.preparedQuery("INSERT INTO m2m_signing_keys (kid, algorithm, public_jwk, private_jwk, sealed_with, "
          + "created_at, activates_at, retires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)").executeBatch(batch);
    }).map(v -> {
      gone.forEach(kid -> LOG.info("Deleted JWT signing key {}: no token it signed can be live", kid));
      made.forEach(key -> LOG.info("Made JWT signing key {}: signs from {} to {}", key.kid(), key.activatesAt(),
          key.retiresAt()));
      List<Stored> all = new ArrayList<>(kept);
      all.addAll(made);
      return all;
    });
  }

  private Stored generate(Instant activatesAt, Instant now) throws JOSEException, GeneralSecurityException {
    String kid = UUID.randomUUID().toString();
    ECKey key = new ECKeyGenerator(Curve.P_256).keyID(kid).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256)
        .issueTime(Date.from(now)).generate();
    byte[] privateJwk = key.toJSONString().getBytes(StandardCharsets.UTF_8);
    Long sealedWith = null;
    if (sealer != null) {
      privateJwk = sealer.encrypt(privateJwk, associated(kid));
      sealedWith = sealerKeyId;
    }
    return new Stored(kid, key.toPublicJWK().toJSONString(), privateJwk, sealedWith, activatesAt,
        activatesAt.plus(config.keyRotation()));
  }

  /** Opens the keys that sign now or later; one that cannot be opened is left out, loudly. */
  private void load(List<Stored> keys, Instant now) {
    if (!config.enabled()) {
      signing = List.of();
      return;
    }
    List<SigningKey> opened = new ArrayList<>();
    for (Stored key : keys) {
      if (!now.isBefore(key.retiresAt())) {
        continue;
      }
      try {
        byte[] json = key.privateJwk();
        if (key.sealedWith() != null) {
          if (sealer == null) {
            throw new GeneralSecurityException("it is sealed and no vault keyset is configured");
          }
          json = sealer.decrypt(json, associated(key.kid()));
        }
        ECKey ec = ECKey.parse(new String(json, StandardCharsets.UTF_8));
        opened.add(new SigningKey(key.kid(), ec, new ECDSASigner(ec), key.activatesAt(), key.retiresAt()));
      } catch (GeneralSecurityException | ParseException | JOSEException e) {
        LOG.error("JWT signing key {} cannot be used: {}", key.kid(), e.getMessage());
      }
    }
    signing = List.copyOf(opened);
  }

  private JsonObject published(List<Stored> keys, Instant now) {
    JsonArray set = new JsonArray();
    for (Stored key : keys) {
      if (now.isBefore(key.retiresAt().plus(publishedAfterRetirement()))) {
        set.add(new JsonObject(key.publicJwk()));
      }
    }
    return new JsonObject().put("keys", set);
  }

  /**
   * The token as a signed JWT: RFC 9068's claims plus {@code tenant_id}; its {@code exp} and
   * {@code jti} are those of the stored token, so introspection and revocation describe the same token.
   */
  String sign(StoredToken token, String issuer) {
    Instant now = token.createdAt();
    SigningKey key = signing.stream().filter(k -> activeAt(k.activatesAt(), k.retiresAt(), now))
        .max(Comparator.comparing(SigningKey::activatesAt)).orElse(null);
    if (key == null) {
      throw OAuthRoutes.oauthError(503, "temporarily_unavailable",
          "No JWT signing key is active: the database could not be reached to make one.");
    }
    JWTClaimsSet claims = new JWTClaimsSet.Builder()
        .issuer(issuer)
        .subject(token.clientId())
        .audience(config.audience() != null ? config.audience() : issuer)
        .issueTime(Date.from(token.createdAt()))
        .expirationTime(Date.from(token.expiresAt()))
        .jwtID(token.id().toString())
        .claim("client_id", token.clientId())
        .claim("scope", String.join(" ", token.scopes()))
        .claim("tenant_id", token.tenantId())
        .build();
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.ES256).type(ACCESS_TOKEN_TYPE).keyID(key.kid())
        .build(), claims);
    try {
      jwt.sign(key.signer());
    } catch (JOSEException e) {
      throw new IllegalStateException("Signing failed with key " + key.kid(), e);
    }
    return jwt.serialize();
  }

  /** Whether a token issued at {@code now} can be signed. */
  boolean canSign(Instant now) {
    return signing.stream().anyMatch(k -> activeAt(k.activatesAt(), k.retiresAt(), now));
  }

  private static boolean activeAt(Instant activatesAt, Instant retiresAt, Instant now) {
    return !now.isBefore(activatesAt) && now.isBefore(retiresAt);
  }

  private static byte[] associated(String kid) {
    return (ASSOCIATED + kid).getBytes(StandardCharsets.UTF_8);
  }

  private static Stored stored(Row row) {
    Long sealed = row.getLong("sealed_with");
    return new Stored(row.getString("kid"), row.getString("public_jwk"), row.getBuffer("private_jwk").getBytes(), sealed,
        row.getOffsetDateTime("activates_at").toInstant(), row.getOffsetDateTime("retires_at").toInstant());
  }

  private static OffsetDateTime time(Instant instant) {
    return instant.atOffset(ZoneOffset.UTC);
  }
}
