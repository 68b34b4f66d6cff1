package dev.tokenlease.vault;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.LocalBus;
import dev.tokenlease.platform.db.SharedPool;
import dev.tokenlease.platform.LocalRecordCodec;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.vault.CredentialMessages.Info;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The credential vault: stores third-party API credentials sealed under the master keyset, hands
 * the current value to callers, and rotates each refreshable credential before it expires. A new
 * value becomes current only once it is obtained and stored; the previous one stays served to those
 * who ask for it until it expires. One rotation per credential runs at a time (in this process by a
 * set of ids, across processes by a claim in the row). Failures retry with exponential backoff; a
 * credential is marked failed only when retries are exhausted or it has expired, and its value is
 * still served until it expires.
 *
 * <p>Without a keyset, or with one that lacks a key the stored rows were sealed under or holds other
 * key material under the same key id, the vault stays locked and answers 503: it fails closed. No
 * value is ever logged or published.
 */
public final class CredentialsVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(CredentialsVerticle.class);
  private static final int ROTATIONS_PER_TICK = 20;
  private static final int REENCRYPT_BATCH = 100;
  private static final Duration MAX_BACKOFF = Duration.ofHours(1);
  private static final String SEAL_FAILED = "Failed to process request: the vault could not encrypt a secret";

  private final AppConfig.VaultConfig config;
  private final PgConnectOptions connectOptions;
  private final Set<UUID> rotating = new HashSet<>();
  private Pool pg;
  private CredentialRepository repository;
  private ProviderClient provider;
  private VaultCipher cipher;
  private String lockReason;
  private long timer = -1;
  private List<MessageConsumer<?>> consumers = List.of();

  public CredentialsVerticle(AppConfig.VaultConfig config, PgConnectOptions connectOptions) {
    this.config = config;
    this.connectOptions = connectOptions;
  }

  @Override
  public Future<?> start() {
    pg = SharedPool.handle(vertx, connectOptions);
    repository = new CredentialRepository(pg, config.rotationWindow());
    provider = new ProviderClient(vertx, config.providerTimeout());
    EventBus bus = vertx.eventBus();
    LocalRecordCodec.registerAll(bus, CredentialMessages.Create.class, CredentialMessages.ListQuery.class,
        CredentialMessages.Get.class, CredentialMessages.History.class, CredentialMessages.Retire.class,
        CredentialMessages.RotateNow.class, CredentialMessages.Current.class, CredentialMessages.Usage.class,
        CredentialMessages.Reencrypt.class, Info.class, CredentialMessages.Page.class, CredentialMessages.Value.class,
        CredentialMessages.UsageStats.class, CredentialMessages.HistoryReply.class, CredentialMessages.Reencrypted.class);
    return unlock().compose(v -> {
      consumers = List.of(
          serve(CredentialAddresses.CREATE, this::create),
          serve(CredentialAddresses.LIST, repository::list),
          serve(CredentialAddresses.GET, (CredentialMessages.Get q) -> found(repository.get(q.id()))),
          serve(CredentialAddresses.HISTORY, (CredentialMessages.History q) ->
              found(repository.get(q.id())).compose(info -> repository.history(q.id()))),
          serve(CredentialAddresses.RETIRE, this::retire),
          serve(CredentialAddresses.ROTATE, (CredentialMessages.RotateNow q) -> rotateNow(q.id())),
          serve(CredentialAddresses.CURRENT, this::current),
          serve(CredentialAddresses.USAGE, (CredentialMessages.Usage q) -> found(repository.recordUsage(q))),
          serve(CredentialAddresses.REENCRYPT, (CredentialMessages.Reencrypt q) -> reencrypt()));
      timer = vertx.setPeriodic(config.rotationInterval().toMillis(), id -> rotateDue());
      if (cipher != null) {
        reencrypt().onSuccess(n -> {
          if (n.count() > 0) {
            LOG.info("Re-encrypted {} vault secrets under the primary key {}", n.count(), cipher.primaryKeyId());
          }
        }).onFailure(err -> LOG.error("Re-encrypting vault secrets failed: {}", err.getMessage()));
      }
      return Future.all(consumers.stream().map(MessageConsumer::completion).toList());
    });
  }

  @Override
  public Future<?> stop() {
    if (timer != -1) {
      vertx.cancelTimer(timer);
    }
    provider.close();
    return pg.close();
  }

  /**
   * Opens the vault only with the keyset its secrets were sealed under: the keyset must hold every
   * key id the stored rows use, open one stored secret under each, and open the canary (stored at the
   * first unlock, so even an empty vault knows its keyset). Key ids alone prove nothing: a keyset
   * rebuilt with the same ids and other key material would fail every read and seal new rows that
   * the real keyset cannot open.
   */
  private Future<Void> unlock() {
    if (config.keysetJson() == null) {
      lockReason = "The credential vault is locked: no TOKENS_VAULT_KEYSET or TOKENS_VAULT_KEYSET_FILE is configured.";
      LOG.warn(lockReason);
      return Future.succeededFuture();
    }
    VaultCipher candidate;
    VaultCipher.Sealed firstCanary;
    try {
      candidate = VaultCipher.fromKeysetJson(config.keysetJson());
      firstCanary = candidate.sealCanary();
    } catch (GeneralSecurityException e) {
      return Future.failedFuture(e);
    }
    return repository.sealedSamples().compose(samples -> {
      Set<Long> missing = new TreeSet<>();
      Set<Long> unreadable = new TreeSet<>();
      for (CredentialRepository.SealedSample sample : samples) {
        if (!candidate.hasKey(sample.keyId())) {
          missing.add(sample.keyId());
        } else if (!opens(candidate, sample)) {
          unreadable.add(sample.keyId());
        }
      }
      if (!missing.isEmpty()) {
        return locked("The credential vault is locked: stored credentials are sealed under key ids " + missing
            + " that the configured keyset does not hold.");
      }
      if (!unreadable.isEmpty()) {
        return locked("The credential vault is locked: the configured keyset has key ids " + unreadable
            + " but cannot decrypt the stored credentials sealed under them; its key material is not theirs.");
      }
      return repository.canary(firstCanary).compose(canary -> {
        if (!candidate.opensCanary(canary.ciphertext())) {
          return locked("The credential vault is locked: the configured keyset cannot decrypt the vault's canary,"
              + " sealed under key id " + canary.keyId() + "; it is not the keyset this vault was first opened with.");
        }
        cipher = candidate;
        LOG.info("Credential vault open; primary key {}", candidate.primaryKeyId());
        return Future.succeededFuture();
      });
    });
  }

  private Future<Void> locked(String reason) {
    lockReason = reason;
    LOG.error(reason);
    return Future.succeededFuture();
  }

  private static boolean opens(VaultCipher keyset, CredentialRepository.SealedSample sample) {
    try {
      String purpose = sample.version() == null ? sample.field() : version(sample.version());
      keyset.open(sample.ciphertext(), sample.id(), purpose);
      return true;
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  /** Answers {@code address} while the vault is open; 503 with the reason while it is locked. */
  private <Q, R> MessageConsumer<Q> serve(String address, Function<Q, Future<R>> handler) {
    return LocalBus.serve(vertx.eventBus(), address, (Q request) -> cipher == null
        ? Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE, lockReason))
        : handler.apply(request));
  }

  private static <T> Future<T> found(Future<T> lookup) {
    return lookup.compose(value -> value == null
        ? Future.failedFuture(new ApiException(ErrorCode.NOT_FOUND, "Credential not found"))
        : Future.succeededFuture(value));
  }

  private Future<Info> create(CredentialMessages.Create c) {
    UUID id = UUID.randomUUID();
    CredentialMessages.RefreshSettings r = c.refresh();
    VaultCipher.Sealed value = seal(c.value(), id, version(1));
    VaultCipher.Sealed secret = r == null || r.clientSecret() == null ? null : seal(r.clientSecret(), id, "client_secret");
    VaultCipher.Sealed refresh = r == null || r.refreshToken() == null ? null : seal(r.refreshToken(), id, "refresh_token");
    return repository.create(new CredentialRepository.NewCredential(id, c.service(), c.environment(), c.expiresAt(),
            value.ciphertext(), value.keyId(), r == null ? null : r.tokenUrl(), r == null ? null : r.grantType(),
            r == null ? null : r.clientId(), r == null ? null : r.scope(),
            secret == null ? null : secret.ciphertext(), secret == null ? null : secret.keyId(),
            refresh == null ? null : refresh.ciphertext(), refresh == null ? null : refresh.keyId()))
        .onSuccess(info -> {
          LOG.info("Credential {} created for {}/{}, expires {}", id, info.service(), info.environment(), info.expiresAt());
          publish("created", info.id(), info.service(), info.environment(), 1, null, null);
        });
  }

  private Future<Info> retire(CredentialMessages.Retire q) {
    return found(repository.get(q.id())).compose(info -> repository.retire(q.id()).compose(changed -> {
      if (changed) {
        publish("retired", info.id(), info.service(), info.environment(), info.currentVersion(), null, null);
      }
      return repository.get(q.id());
    }));
  }

  private Future<CredentialMessages.Value> current(CredentialMessages.Current q) {
    return repository.current(q.service(), q.environment(), q.stage()).compose(sealed -> {
      if (sealed == null) {
        return Future.failedFuture(new ApiException(ErrorCode.UNAVAILABLE,
            "No valid " + q.service() + " API token available"));
      }
      String value = open(sealed.ciphertext(), sealed.id(), version(sealed.version()));
      return repository.countUse(sealed.id()).map(v -> new CredentialMessages.Value(sealed.id(), sealed.service(),
          sealed.environment(), sealed.version(), value, sealed.expiresAt()));
    });
  }

  /** A rotation asked for by an operator: runs now, whatever the schedule, and reports its outcome. */
  private Future<Info> rotateNow(UUID id) {
    return found(repository.get(id)).compose(info -> {
      if (info.tokenUrl() == null) {
        return Future.failedFuture(new ApiException(ErrorCode.BAD_REQUEST, "Credential has no refresh settings."));
      }
      return rotate(id).compose(v -> repository.get(id));
    });
  }

  /**
   * The periodic job: rotate what is due (inside the window, or a failed attempt's retry time has
   * come). It writes no status: {@code expiring} is computed from the clock when a credential is read.
   */
  private void rotateDue() {
    if (cipher == null) {
      return;
    }
    repository.due(ROTATIONS_PER_TICK)
        .onSuccess(due -> due.stream().filter(id -> !rotating.contains(id)).forEach(id ->
            rotate(id).onFailure(err -> LOG.debug("Scheduled rotation of {} did not succeed: {}", id, err.getMessage()))))
        .onFailure(err -> LOG.error("Rotation check failed: {}", err.getMessage()));
  }

  private Future<Void> rotate(UUID id) {
    if (!rotating.add(id)) {
      return Future.failedFuture(new ApiException(ErrorCode.CONFLICT, "A rotation of this credential is already running."));
    }
    Instant claimUntil = Instant.now().plus(config.providerTimeout().multipliedBy(2)).plusSeconds(30);
    return repository.claim(id, claimUntil).compose(claimed -> {
      if (claimed == null) {
        return Future.<Void>failedFuture(new ApiException(ErrorCode.CONFLICT,
            "The credential cannot be rotated now: it is retired or being rotated elsewhere."));
      }
      String secret = claimed.clientSecret() == null ? null : open(claimed.clientSecret(), id, "client_secret");
      String refreshToken = claimed.refreshToken() == null ? null : open(claimed.refreshToken(), id, "refresh_token");
      return provider.refresh(claimed.tokenUrl(), claimed.grantType(), claimed.clientId(), secret, refreshToken,
              claimed.scope())
          .transform(outcome -> outcome.succeeded()
              ? rotated(claimed, outcome.result())
              : rotationFailed(claimed, outcome.cause()));
    }).eventually(() -> {
      rotating.remove(id);
      return Future.succeededFuture();
    });
  }

  private Future<Void> rotated(CredentialRepository.Claimed claimed, ProviderClient.Issued issued) {
    int version = claimed.currentVersion() + 1;
    Instant expiresAt = Instant.now().plus(issued.expiresIn());
    VaultCipher.Sealed value = seal(issued.accessToken(), claimed.id(), version(version));
    VaultCipher.Sealed refresh = issued.refreshToken() == null ? null
        : seal(issued.refreshToken(), claimed.id(), "refresh_token");
    return repository.rotated(claimed.id(), version, value.ciphertext(), value.keyId(), expiresAt,
            refresh == null ? null : refresh.ciphertext(), refresh == null ? null : refresh.keyId())
        .onSuccess(v -> {
          LOG.info("Credential {} ({}/{}) rotated to version {}, expires {}", claimed.id(), claimed.service(),
              claimed.environment(), version, expiresAt);
          publish("rotated", claimed.id(), claimed.service(), claimed.environment(), version, null, null);
        });
  }

  private Future<Void> rotationFailed(CredentialRepository.Claimed claimed, Throwable cause) {
    String reason = cause instanceof ProviderClient.RefreshFailed ? cause.getMessage() : "rotation error: "
        + cause.getClass().getSimpleName();
    int attempts = claimed.attempts() + 1;
    boolean expired = !claimed.expiresAt().isAfter(Instant.now());
    boolean giveUp = attempts >= config.maxAttempts() || expired;
    Duration backoff = config.retryBackoff().multipliedBy(1L << Math.min(attempts - 1, 20));
    Instant next = giveUp ? null : Instant.now().plus(backoff.compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff);
    String status = giveUp ? "failed" : claimed.status();
    return repository.rotationFailed(claimed.id(), attempts, next, status, reason).transform(recorded -> {
      LOG.warn("Rotation of credential {} ({}/{}) failed, attempt {} of {}{}: {}", claimed.id(), claimed.service(),
          claimed.environment(), attempts, config.maxAttempts(), giveUp ? ", marked failed" : ", next at " + next, reason);
      publish("rotation_failed", claimed.id(), claimed.service(), claimed.environment(), null, attempts, reason);
      if (giveUp) {
        publish("failed", claimed.id(), claimed.service(), claimed.environment(), null, attempts, reason);
      }
      return Future.failedFuture(new ApiException(ErrorCode.BAD_GATEWAY, "Rotation failed: " + reason));
    });
  }

  /**
   * Moves every secret sealed under an older key to the primary key, a batch at a time, and the canary
   * with them (it is not counted), so that once this is done the older keys can leave the keyset.
   */
  private Future<CredentialMessages.Reencrypted> reencrypt() {
    return reencryptVersions(0).compose(versions -> reencryptSecrets(0).compose(secrets -> resealCanary().map(v ->
        new CredentialMessages.Reencrypted(versions + secrets))));
  }

  private Future<Void> resealCanary() {
    try {
      return repository.resealCanary(cipher.sealCanary());
    } catch (GeneralSecurityException e) {
      return Future.failedFuture(new ApiException(ErrorCode.INTERNAL, SEAL_FAILED));
    }
  }

  private Future<Integer> reencryptVersions(int done) {
    long primary = cipher.primaryKeyId();
    return repository.staleVersions(primary, REENCRYPT_BATCH).compose(stale -> {
      if (stale.isEmpty()) {
        return Future.succeededFuture(done);
      }
      List<Future<Void>> writes = new ArrayList<>();
      for (CredentialRepository.StaleVersion v : stale) {
        VaultCipher.Sealed resealed = seal(open(v.ciphertext(), v.id(), version(v.version())), v.id(), version(v.version()));
        writes.add(repository.rewrapVersion(v.id(), v.version(), resealed.ciphertext(), resealed.keyId()));
      }
      return Future.all(writes).compose(all -> reencryptVersions(done + stale.size()));
    });
  }

  private Future<Integer> reencryptSecrets(int done) {
    long primary = cipher.primaryKeyId();
    return repository.staleSecrets(primary, REENCRYPT_BATCH).compose(stale -> {
      if (stale.isEmpty()) {
        return Future.succeededFuture(done);
      }
      List<Future<Void>> writes = new ArrayList<>();
      for (Row row : stale) {
        UUID id = row.getUUID("id");
        VaultCipher.Sealed secret = reseal(row.getBuffer("client_secret"), id, "client_secret");
        VaultCipher.Sealed refresh = reseal(row.getBuffer("refresh_token"), id, "refresh_token");
        writes.add(repository.rewrapSecrets(id, secret == null ? null : secret.ciphertext(),
            secret == null ? null : secret.keyId(), refresh == null ? null : refresh.ciphertext(),
            refresh == null ? null : refresh.keyId()));
      }
      return Future.all(writes).compose(all -> reencryptSecrets(done + stale.size()));
    });
  }

  private VaultCipher.Sealed reseal(io.vertx.core.buffer.Buffer sealed, UUID id, String purpose) {
    return sealed == null ? null : seal(open(sealed.getBytes(), id, purpose), id, purpose);
  }

  private VaultCipher.Sealed seal(String secret, UUID id, String purpose) {
    try {
      return cipher.seal(secret, id, purpose);
    } catch (GeneralSecurityException e) {
      throw new ApiException(ErrorCode.INTERNAL, SEAL_FAILED);
    }
  }

  /**
   * Fails closed: a ciphertext the keyset cannot open is an error, never an empty value. It is 503, as
   * a locked vault is: the keyset cannot serve this secret, nothing in the request is wrong.
   */
  private String open(byte[] ciphertext, UUID id, String purpose) {
    try {
      return cipher.open(ciphertext, id, purpose);
    } catch (GeneralSecurityException e) {
      LOG.error("A secret of credential {} cannot be decrypted with the configured vault keyset", id);
      throw new ApiException(ErrorCode.UNAVAILABLE,
          "The credential vault cannot decrypt a stored secret with the configured keyset.");
    }
  }

  private static String version(int version) {
    return "v" + version;
  }

  private void publish(String type, UUID id, String service, String environment, Integer version, Integer attempt,
      String detail) {
    vertx.eventBus().publish(CredentialAddresses.EVENTS, new JsonObject()
        .put("type", type).put("credential_id", id.toString()).put("service", service).put("environment", environment)
        .put("version", version).put("attempt", attempt).put("detail", detail)
        .put("at", CredentialMessages.time(Instant.now())));
  }
}
