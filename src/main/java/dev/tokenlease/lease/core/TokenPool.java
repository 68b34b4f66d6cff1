package dev.tokenlease.lease.core;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The token pool: which token is leased to whom, until when. Plain Java, single-threaded by
 * contract (its owner serializes every call), every operation O(1) apart from listing and clearing.
 *
 * <p>With one fixed lease TTL, activation order is expiry order, so the active leases form a queue
 * whose head is both the next to expire and the oldest (evicted first when the pool is full); a
 * renewal moves a lease to the tail. Available tokens form a queue too, ordered by release time,
 * so the token handed out is the one released longest ago and wear spreads evenly.
 *
 * <p>Deadlines are kept on a monotonic clock; the wall clock only stamps reported times. Every
 * operation first retires leases whose deadline has passed, so no caller ever sees a lease past its
 * end; a lease that expired ends at its expiry instant, not when it was noticed.
 *
 * <p>Each mutation records {@link PoolChange}s, collected by {@link #drainChanges()}. A pool made
 * undoable also keeps the inverse of every step, so that the changes its database never accepted
 * can be taken back ({@link #undoTo(long)}); generation numbers are never taken back, so a number
 * handed out once is never handed out again.
 */
public final class TokenPool {
  private final Clock clock;
  private final LongSupplier nanoTime;
  private final long ttlMillis;
  private final long ttlNanos;
  /** The pool's name in messages; the only pool so far is the seed's. */
  private final String name = "default";
  private final Token[] tokensInOrder;
  private final Map<UUID, Token> tokensById;
  private final TokenQueue available = new TokenQueue();
  private final TokenQueue active = new TokenQueue();
  private final List<PoolChange> changes = new ArrayList<>();
  private long lastGeneration;
  private long generationLimit = Long.MAX_VALUE;
  private final UndoLog undo;
  private final IdempotencyKeys keys;
  private final long blockedUntilMillis;
  private long blockedUntilNanos;
  private boolean blocked;
  /** What a full pool does; set from configuration, applies to activations from then on. */
  private Overflow overflow = Overflow.EVICT_OLDEST;
  /** Activations refused because the pool was full (REJECT), since start; a refusal changes nothing. */
  private long rejected;
  /** The most leases one user may hold at once; 0 for no limit. */
  private int maxLeasesPerUser;
  /** Active leases per user, kept only while a limit is set (and then exactly, undo included). */
  private final Map<UUID, Integer> leasesByUser = new HashMap<>();

  /**
   * Rebuilds the pool from a snapshot. Leases that ran out before now are closed at their expiry
   * instant; a lease with more than one TTL left (a shorter TTL than when it was granted) is cut to
   * one TTL from now. Both are recorded as changes. The Idempotency-Keys of the open leases are
   * remembered again as if the service had not stopped; keys of leases that had ended are not.
   *
   * @param nanoTime a monotonic clock, as {@link System#nanoTime()}
   */
  public TokenPool(PoolSnapshot snapshot, Duration ttl, Clock clock, LongSupplier nanoTime) {
    this(snapshot, ttl, clock, nanoTime, false);
  }

  /** @param undoable keep what {@link #undoTo(long)} needs (costs a few small objects per step) */
  public TokenPool(PoolSnapshot snapshot, Duration ttl, Clock clock, LongSupplier nanoTime, boolean undoable) {
    this.undo = undoable ? new UndoLog() : null;
    this.keys = new IdempotencyKeys(undo);
    if (ttl.isNegative() || ttl.isZero()) {
      throw new IllegalArgumentException("lease TTL must be positive: " + ttl);
    }
    this.clock = clock;
    this.nanoTime = nanoTime;
    this.ttlMillis = ttl.toMillis();
    this.ttlNanos = ttl.toNanos();
    this.lastGeneration = snapshot.lastGeneration();

    List<PoolSnapshot.StoredToken> stored = snapshot.tokens();
    tokensInOrder = new Token[stored.size()];
    tokensById = new HashMap<>(Math.max(16, (int) (stored.size() / 0.75f) + 1));
    for (int i = 0; i < tokensInOrder.length; i++) {
      PoolSnapshot.StoredToken row = stored.get(i);
      Token token = new Token(row.id(), row.seq());
      token.activatedAtMillis = row.activatedAtMillis();
      token.releasedAtMillis = row.releasedAtMillis();
      token.usageCount = row.usageCount();
      token.evictedUserId = row.evictedUserId();
      token.evictedGeneration = row.evictedGeneration();
      tokensInOrder[i] = token;
      if (tokensById.put(token.id, token) != null) {
        throw new IllegalArgumentException("duplicate token id " + token.id);
      }
    }
    Arrays.sort(tokensInOrder, Comparator.comparingInt(t -> t.seq));

    long nowMillis = clock.millis();
    long nowNanos = nanoTime.getAsLong();
    restoreLeases(snapshot.openLeases(), snapshot.endedKeys(), nowMillis, nowNanos);

    Token[] free = Arrays.stream(tokensInOrder).filter(t -> t.lease == null).toArray(Token[]::new);
    // Never-used tokens (no release time) first, then the one released longest ago.
    Arrays.sort(free, Comparator.<Token>comparingLong(t -> t.releasedAtMillis).thenComparingInt(t -> t.seq));
    for (Token token : free) {
      available.append(token);
    }

    blockedUntilMillis = snapshot.activationsBlockedUntilMillis();
    blocked = blockedUntilMillis != PoolChange.NO_TIME && blockedUntilMillis > nowMillis;
    if (blocked) {
      blockedUntilNanos = nowNanos + (blockedUntilMillis - nowMillis) * 1_000_000L;
    }
  }

  private void restoreLeases(List<PoolSnapshot.StoredLease> leases, List<PoolSnapshot.EndedKey> endedKeys,
      long nowMillis, long nowNanos) {
    List<PoolSnapshot.StoredLease> ordered = new ArrayList<>(leases);
    ordered.sort(Comparator.comparingLong(PoolSnapshot.StoredLease::expiresAtMillis)
        .thenComparingLong(PoolSnapshot.StoredLease::generation));
    for (PoolSnapshot.StoredLease row : ordered) {
      Token token = tokensById.get(row.tokenId());
      if (token == null) {
        throw new IllegalArgumentException("open lease " + row.generation() + " names unknown token " + row.tokenId());
      }
      if (token.lease != null) {
        throw new IllegalArgumentException("token " + row.tokenId() + " has two open leases");
      }
      lastGeneration = Math.max(lastGeneration, row.generation());
      long expiresAt = Math.min(row.expiresAtMillis(), nowMillis + ttlMillis);
      Lease lease = new Lease(row.userId(), row.generation(), row.startedAtMillis(),
          nowNanos - (nowMillis - row.startedAtMillis()) * 1_000_000L, row.idempotencyKey(), row.evicted(),
          expiresAt, nowNanos + (expiresAt - nowMillis) * 1_000_000L);
      if (expiresAt <= nowMillis) {
        // Ran out while the service was down: closed at its expiry instant.
        token.releasedAtMillis = expiresAt;
        changes.add(PoolChange.of(PoolChange.Kind.ENDED, token, lease, expiresAt, EndReason.EXPIRED));
        continue;
      }
      token.lease = lease;
      active.append(token);
      if (expiresAt != row.expiresAtMillis()) {
        changes.add(PoolChange.of(PoolChange.Kind.RENEWED, token, lease, PoolChange.NO_TIME, null));
      }
    }
    // Keys wait in grant order, which is generation order: those of open leases, and those of
    // leases that ended less than one TTL after their grant (detached: no token holds them).
    List<Map.Entry<Token, Lease>> keyed = new ArrayList<>();
    Arrays.stream(tokensInOrder).filter(t -> t.lease != null && t.lease.idempotencyKey != null)
        .forEach(t -> keyed.add(Map.entry(t, t.lease)));
    for (PoolSnapshot.EndedKey ended : endedKeys) {
      Token token = tokensById.get(ended.tokenId());
      if (token != null && ended.startedAtMillis() + ttlMillis > nowMillis) {
        keyed.add(Map.entry(token, new Lease(ended.userId(), ended.generation(), ended.startedAtMillis(),
            nowNanos - (nowMillis - ended.startedAtMillis()) * 1_000_000L, ended.key(), null,
            ended.startedAtMillis(), nowNanos)));
      }
    }
    keyed.sort(Comparator.comparingLong(e -> e.getValue().generation));
    keyed.forEach(e -> keys.restore(e.getKey(), e.getValue(),
        nowNanos + (e.getValue().startedAtMillis + ttlMillis - nowMillis) * 1_000_000L, nowNanos));
  }

  /**
   * Leases a token to a user: the available token released longest ago or, when every token is
   * active, the token of the oldest active lease, which ends as evicted (and is named in the answer).
   */
  public Grant activate(UUID userId) {
    return activate(userId, null);
  }

  /**
   * Leases a token to a user, as {@link #activate(UUID)}, under an Idempotency-Key: a retry with a
   * key that is remembered (see {@link IdempotencyKeys}) changes nothing. By the same user while the
   * key's lease lives, it is answered that lease as it is now; after the lease ended, 409; by another
   * user, 422.
   *
   * @param idempotencyKey the caller's key, or null for none
   */
  public Grant activate(UUID userId, String idempotencyKey) {
    long nowNanos = expireDue();
    IdempotencyKeys.Entry known = idempotencyKey == null ? null : keys.find(idempotencyKey);
    if (known != null) {
      if (!known.lease.userId.equals(userId)) {
        throw new ApiException(ErrorCode.UNPROCESSABLE, "Idempotency-Key was used by another user.");
      }
      if (!known.alive()) {
        throw new ApiException(ErrorCode.CONFLICT, "The lease for this Idempotency-Key has ended.");
      }
      return new Grant(view(known.token), known.lease.evicted, true);
    }
    if (blocked) {
      if (nowNanos - blockedUntilNanos < 0) {
        throw new ApiException(ErrorCode.UNAVAILABLE,
            "The pool is recovering from an unclean stop; activations resume at "
                + Instant.ofEpochMilli(blockedUntilMillis).truncatedTo(java.time.temporal.ChronoUnit.SECONDS) + ".",
            wholeSecondsUntil(blockedUntilNanos, nowNanos));
      }
      blocked = false;
    }
    if (lastGeneration >= generationLimit) {
      throw new ApiException(ErrorCode.UNAVAILABLE,
          "No fencing number is reserved in the database yet; try again shortly.");
    }
    if (maxLeasesPerUser > 0 && leasesByUser.getOrDefault(userId, 0) >= maxLeasesPerUser) {
      throw new ApiException(ErrorCode.CONFLICT,
          "User already holds " + maxLeasesPerUser + " tokens in pool " + name + ".");
    }
    long nowMillis = clock.millis();
    Grant.Evicted evicted = null;
    if (available.size() == 0) {
      Token oldest = active.head();
      if (oldest == null) {
        throw new ApiException(ErrorCode.INTERNAL, "No available tokens. This should not happen.");
      }
      if (overflow == Overflow.REJECT) {
        rejected++;
        // The head of the active queue is the next lease due to end.
        throw new ApiException(ErrorCode.CONFLICT, "No token available in pool " + name + ".",
            wholeSecondsUntil(oldest.lease.deadlineNanos, nowNanos));
      }
      Lease ending = oldest.lease;
      evicted = new Grant.Evicted(oldest.id, ending.userId, ending.generation,
          Math.max(0, (nowNanos - ending.startedNanos) / 1_000_000L));
      end(oldest, EndReason.EVICTED, nowMillis);
    }
    Token token = available.head();
    removeFrom(available, token);
    Lease lease = new Lease(userId, ++lastGeneration, nowMillis, nowNanos, idempotencyKey, evicted,
        nowMillis + ttlMillis, nowNanos + ttlNanos);
    saveState(token);
    token.lease = lease;
    token.activatedAtMillis = nowMillis;
    token.releasedAtMillis = PoolChange.NO_TIME;
    token.usageCount++;
    if (userId.equals(token.evictedUserId)) {
      // The evicted holder's newer lease of the token supersedes the notice.
      token.evictedUserId = null;
      token.evictedGeneration = 0;
    }
    appendTo(active, token);
    countLease(userId, 1);
    if (idempotencyKey != null) {
      keys.remember(token, lease, nowNanos + ttlNanos);
    }
    changes.add(PoolChange.of(PoolChange.Kind.GRANTED, token, lease, PoolChange.NO_TIME, null));
    return new Grant(view(token), evicted, false);
  }

  /**
   * Ends the holder's lease early.
   *
   * @param generation the generation the caller was granted, or null to skip the fencing check
   * @return the token as it is now, with {@link TokenView#generation()} of the lease that ended
   */
  public TokenView release(UUID tokenId, UUID userId, Long generation) {
    expireDue();
    Token token = heldBy(tokenId, userId, generation);
    long ended = token.lease.generation;
    end(token, EndReason.RELEASED, clock.millis());
    return view(token, ended);
  }

  /** Extends the holder's lease to one TTL from now. */
  public TokenView renew(UUID tokenId, UUID userId, Long generation) {
    long nowNanos = expireDue();
    Token token = heldBy(tokenId, userId, generation);
    Lease lease = token.lease;
    if (undo != null) {
      undo.leaseTimes(lease);
    }
    lease.expiresAtMillis = clock.millis() + ttlMillis;
    lease.deadlineNanos = nowNanos + ttlNanos;
    removeFrom(active, token);
    appendTo(active, token);
    changes.add(PoolChange.of(PoolChange.Kind.RENEWED, token, lease, PoolChange.NO_TIME, null));
    return view(token);
  }

  /**
   * The token whose lease the caller holds, or the refusal that says why not. The holder of the
   * token's last evicted lease hears that it was evicted, unless it names another generation.
   */
  private Token heldBy(UUID tokenId, UUID userId, Long generation) {
    Token token = find(tokenId);
    Lease lease = token.lease;
    boolean holds = lease != null && lease.userId.equals(userId)
        && (generation == null || generation == lease.generation);
    if (holds) {
      return token;
    }
    if (userId.equals(token.evictedUserId) && (generation == null || generation == token.evictedGeneration)) {
      throw new ApiException(ErrorCode.CONFLICT, "Token was evicted.");
    }
    if (lease == null) {
      throw new ApiException(ErrorCode.CONFLICT, "Token is not active.");
    }
    if (!lease.userId.equals(userId)) {
      throw new ApiException(ErrorCode.CONFLICT, "Token is held by another user.");
    }
    if (generation != null && generation != lease.generation) {
      throw new ApiException(ErrorCode.CONFLICT,
          "Stale generation " + generation + ": the token has been leased again since.");
    }
    return token;
  }

  /** Ends every active lease; returns how many there were. */
  public int clear() {
    expireDue();
    long nowMillis = clock.millis();
    int cleared = 0;
    for (Token token = active.head(); token != null; token = active.head()) {
      end(token, EndReason.CLEARED, nowMillis);
      cleared++;
    }
    return cleared;
  }

  public TokenView get(UUID tokenId) {
    expireDue();
    return view(find(tokenId));
  }

  public boolean contains(UUID tokenId) {
    return tokensById.containsKey(tokenId);
  }

  /**
   * Visits tokens in creation order, optionally only those in one state.
   *
   * @param state the state to keep, or null for all
   */
  public void forEach(TokenState state, Consumer<TokenView> visitor) {
    expireDue();
    for (Token token : tokensInOrder) {
      if (state == null || (token.lease != null) == (state == TokenState.ACTIVE)) {
        visitor.accept(view(token));
      }
    }
  }

  public List<TokenView> list(TokenState state) {
    List<TokenView> out = new ArrayList<>();
    forEach(state, out::add);
    return out;
  }

  /**
   * Retires every lease whose deadline has passed, each ending at its own expiry instant, and lets
   * go of the Idempotency-Keys whose time has come.
   *
   * @return the monotonic time it checked against
   */
  public long expireDue() {
    long nowNanos = nanoTime.getAsLong();
    for (Token token = active.head(); token != null && nowNanos - token.lease.deadlineNanos >= 0;
        token = active.head()) {
      end(token, EndReason.EXPIRED, token.lease.expiresAtMillis);
    }
    keys.forgetDue(nowNanos);
    return nowNanos;
  }

  /** Changes recorded since the last call, in the order they happened. */
  public List<PoolChange> drainChanges() {
    if (changes.isEmpty()) {
      return List.of();
    }
    List<PoolChange> out = List.copyOf(changes);
    changes.clear();
    return out;
  }

  public int size() {
    return tokensInOrder.length;
  }

  public int activeCount() {
    return active.size();
  }

  public int availableCount() {
    return available.size();
  }

  /** Sets what a full pool does for the activations that follow. */
  public void overflow(Overflow policy) {
    this.overflow = policy;
  }

  /**
   * Sets the most leases one user may hold at once (0: no limit) for the activations that follow;
   * the leases held now are counted from here on.
   */
  public void maxLeasesPerUser(int limit) {
    leasesByUser.clear();
    if (limit > 0) {
      for (Token token = active.head(); token != null; token = token.next) {
        leasesByUser.merge(token.lease.userId, 1, Integer::sum);
      }
    }
    this.maxLeasesPerUser = limit;
  }

  /** Counts a lease granted (+1) or ended (-1) for its user, undoably, while a limit is set. */
  private void countLease(UUID userId, int delta) {
    if (maxLeasesPerUser == 0) {
      return;
    }
    adjustCount(userId, delta);
    if (undo != null) {
      undo.step(() -> adjustCount(userId, -delta));
    }
  }

  /** A user whose count reaches 0 leaves the map. */
  private void adjustCount(UUID userId, int delta) {
    leasesByUser.merge(userId, delta, (count, change) -> count + change == 0 ? null : count + change);
  }

  /** Activations refused because the pool was full, since start. */
  public long rejectedCount() {
    return rejected;
  }

  /** At least one: a Retry-After never says "now" for something that is not possible now. */
  private static long wholeSecondsUntil(long deadlineNanos, long nowNanos) {
    return Math.max(1, (deadlineNanos - nowNanos + 999_999_999L) / 1_000_000_000L);
  }

  public long lastGeneration() {
    return lastGeneration;
  }

  /**
   * Activations refuse (503) rather than hand out a generation above {@code upTo}: the owner raises
   * the limit once the database holds it, so a number is never reused after a crash.
   */
  public void limitGenerations(long upTo) {
    generationLimit = upTo;
  }

  /** Where the undo history stands now; pass it to {@link #undoTo(long)} to take back what follows. */
  public long undoMark() {
    return undoable().mark();
  }

  /**
   * Puts the pool back exactly as it was at {@code mark}: leases, queues, counters. Changes not yet
   * drained are dropped; generations handed out since stay used.
   */
  public void undoTo(long mark) {
    undoable().undoTo(mark);
    changes.clear();
  }

  /** The steps before {@code mark} are written: they will never be undone. */
  public void forgetBefore(long mark) {
    undoable().forgetBefore(mark);
  }

  private UndoLog undoable() {
    if (undo == null) {
      throw new IllegalStateException("this pool was not made undoable");
    }
    return undo;
  }

  private Token find(UUID tokenId) {
    Token token = tokensById.get(tokenId);
    if (token == null) {
      throw new ApiException(ErrorCode.NOT_FOUND, "Token not found");
    }
    return token;
  }

  private void end(Token token, EndReason reason, long endedAtMillis) {
    Lease lease = token.lease;
    saveState(token);
    token.lease = null;
    token.releasedAtMillis = endedAtMillis;
    if (reason == EndReason.EVICTED) {
      token.evictedUserId = lease.userId;
      token.evictedGeneration = lease.generation;
    }
    removeFrom(active, token);
    appendTo(available, token);
    countLease(lease.userId, -1);
    keys.ended(lease);
    changes.add(PoolChange.of(PoolChange.Kind.ENDED, token, lease, endedAtMillis, reason));
  }

  private void saveState(Token token) {
    if (undo != null) {
      undo.tokenState(token);
    }
  }

  private void removeFrom(TokenQueue queue, Token token) {
    if (undo != null) {
      undo.removed(queue, token, token.prev);
    }
    queue.remove(token);
  }

  private void appendTo(TokenQueue queue, Token token) {
    queue.append(token);
    if (undo != null) {
      undo.appended(queue, token);
    }
  }

  private static TokenView view(Token token) {
    return view(token, token.lease == null ? 0 : token.lease.generation);
  }

  private static TokenView view(Token token, long generation) {
    Lease lease = token.lease;
    return new TokenView(
        token.id,
        lease == null ? TokenState.AVAILABLE : TokenState.ACTIVE,
        lease == null ? null : lease.userId,
        instant(token.activatedAtMillis),
        instant(token.releasedAtMillis),
        token.usageCount,
        generation,
        lease == null ? null : Instant.ofEpochMilli(lease.expiresAtMillis));
  }

  private static Instant instant(long millis) {
    return millis == Token.NO_TIME ? null : Instant.ofEpochMilli(millis);
  }
}
