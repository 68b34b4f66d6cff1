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
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * One token pool: which token is leased to whom, until when, and who waits for one. Plain Java,
 * single-threaded by contract (its owner serializes every call), each operation O(log n) at most
 * apart from listing and clearing. It belongs to a {@link PoolGroup}, which holds what the pools of
 * one owner share (fencing numbers, undo history, pending changes, the bound on waiters).
 *
 * <p>The active leases are ordered by deadline ({@link ActiveLeases}); the head is the next to
 * expire and the one evicted first when the pool is full. Available tokens form a queue ordered by
 * release time, so the token handed out is the one released longest ago and wear spreads evenly.
 * Activations that wait ({@link Overflow#WAIT}) queue first come, first served; they are granted
 * only when the owner calls {@link #serveWaiters()}, which it does when it may acknowledge a grant.
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
  /** The name of the seed's pool, which always exists. */
  public static final String DEFAULT = "default";

  private final PoolGroup group;
  private final Clock clock;
  private final LongSupplier nanoTime;
  private final String name;
  private PoolSettings settings;
  private long ttlMillis;
  private long ttlNanos;
  private Token[] tokensInOrder;
  private final Map<UUID, Token> tokensById;
  private final TokenQueue available = new TokenQueue();
  private final ActiveLeases active = new ActiveLeases();
  /** Activations waiting for a token, first come first served, by the caller's handle. */
  private final LinkedHashMap<Object, Waiter> waiters = new LinkedHashMap<>();
  private final UndoLog undo;
  private final IdempotencyKeys keys;
  /** Activations refused because the pool was full, since start; a refusal changes nothing. */
  private long rejected;
  /** Waits that ran out, since start. */
  private long timedOut;
  /** Active leases per user, exactly (undo included), for the per-user limit. */
  private final Map<UUID, Integer> leasesByUser = new HashMap<>();

  /** An activation waiting for a token. */
  private record Waiter(Object handle, UUID userId, String idempotencyKey, long sinceNanos, long deadlineNanos) {}

  /**
   * A pool {@code default} of its own group, rebuilt from a snapshot, evicting when full (see
   * {@link #TokenPool(PoolGroup, PoolSettings, PoolSnapshot)}).
   *
   * @param nanoTime a monotonic clock, as {@link System#nanoTime()}
   */
  public TokenPool(PoolSnapshot snapshot, Duration ttl, Clock clock, LongSupplier nanoTime) {
    this(snapshot, ttl, clock, nanoTime, false);
  }

  /** @param undoable keep what {@link #undoTo(long)} needs (costs a few small objects per step) */
  public TokenPool(PoolSnapshot snapshot, Duration ttl, Clock clock, LongSupplier nanoTime, boolean undoable) {
    this(new PoolGroup(clock, nanoTime, undoable, snapshot.lastGeneration(), snapshot.activationsBlockedUntilMillis(),
        Integer.MAX_VALUE), PoolSettings.evicting(DEFAULT, ttl), snapshot);
  }

  /**
   * Rebuilds a pool from its snapshot (whose generation and blocking the group has taken already).
   * Leases that ran out before now are closed at their expiry instant; a lease with more than one
   * TTL left (a shorter TTL than when it was granted) is cut to one TTL from now. Both are recorded
   * as changes. The Idempotency-Keys of the open leases are remembered again as if the service had
   * not stopped, and those of leases that ended less than one TTL after their grant.
   */
  TokenPool(PoolGroup group, PoolSettings settings, PoolSnapshot snapshot) {
    this.group = group;
    this.clock = group.clock;
    this.nanoTime = group.nanoTime;
    this.undo = group.undo;
    this.keys = new IdempotencyKeys(undo);
    this.name = settings.name();
    settings(settings);
    group.lastGeneration = Math.max(group.lastGeneration, snapshot.lastGeneration());

    List<PoolSnapshot.StoredToken> stored = snapshot.tokens();
    tokensInOrder = new Token[stored.size()];
    tokensById = new HashMap<>(Math.max(16, (int) (stored.size() / 0.75f) + 1));
    for (int i = 0; i < tokensInOrder.length; i++) {
      Token token = token(stored.get(i));
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
  }

  private static Token token(PoolSnapshot.StoredToken row) {
    Token token = new Token(row.id(), row.seq());
    token.activatedAtMillis = row.activatedAtMillis();
    token.releasedAtMillis = row.releasedAtMillis();
    token.usageCount = row.usageCount();
    token.evictedUserId = row.evictedUserId();
    token.evictedGeneration = row.evictedGeneration();
    token.noticeRevoked = row.noticeRevoked();
    return token;
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
      group.lastGeneration = Math.max(group.lastGeneration, row.generation());
      long expiresAt = Math.min(row.expiresAtMillis(), nowMillis + ttlMillis);
      Lease lease = new Lease(row.userId(), row.generation(), row.startedAtMillis(),
          nowNanos - (nowMillis - row.startedAtMillis()) * 1_000_000L, row.idempotencyKey(), row.evicted(),
          expiresAt, nowNanos + (expiresAt - nowMillis) * 1_000_000L);
      if (expiresAt <= nowMillis) {
        // Ran out while the service was down: closed at its expiry instant.
        token.releasedAtMillis = expiresAt;
        group.changes.add(PoolChange.of(name, PoolChange.Kind.ENDED, token, lease, expiresAt, EndReason.EXPIRED));
        continue;
      }
      token.lease = lease;
      active.add(token);
      adjustCount(lease.userId, 1);
      if (expiresAt != row.expiresAtMillis()) {
        group.changes.add(PoolChange.of(name, PoolChange.Kind.RENEWED, token, lease, PoolChange.NO_TIME, null));
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

  public String name() {
    return name;
  }

  public PoolSettings settings() {
    return settings;
  }

  /**
   * Changes how the pool leases from now on. A pool that stops waiting refuses the activations
   * waiting in it, as a full pool refuses.
   */
  public void settings(PoolSettings next) {
    if (!next.name().equals(name)) {
      throw new IllegalArgumentException("a pool keeps its name: " + name);
    }
    this.settings = next;
    this.ttlMillis = next.leaseTtl().toMillis();
    this.ttlNanos = next.leaseTtl().toNanos();
    if (next.overflow() != Overflow.WAIT && !waiters.isEmpty()) {
      long nowNanos = nanoTime.getAsLong();
      refuseWaiters(full(nowNanos));
    }
  }

  /**
   * Leases a token to a user: the available token released longest ago or, when every token is
   * active, as the pool's {@link Overflow} policy says (without waiting).
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
    return activate(userId, idempotencyKey, null, 0);
  }

  /**
   * Leases a token to a user, or, in a {@link Overflow#WAIT} pool with no token free (or others
   * waiting before it), queues the activation behind the others: it then ends as a
   * {@link WaitOutcome} with this handle, granted by {@link #serveWaiters()}, refused when its wait
   * runs out, or never if it is {@link #cancelWait(Object) cancelled} first.
   *
   * @param waitHandle what the outcome will name (compared by identity), or null not to wait
   * @param waitNanos how long to wait at most; the pool's {@code max_wait} caps it
   * @return the grant, or null when the activation is waiting
   */
  public Grant activate(UUID userId, String idempotencyKey, Object waitHandle, long waitNanos) {
    long nowNanos = expireDue();
    IdempotencyKeys.Entry known = idempotencyKey == null ? null : keys.find(idempotencyKey);
    if (known != null) {
      return repeat(known, userId);
    }
    checkBlocked(nowNanos);
    if (group.lastGeneration >= group.generationLimit) {
      throw new ApiException(ErrorCode.UNAVAILABLE,
          "No fencing number is reserved in the database yet; try again shortly.");
    }
    checkUserLimit(userId);
    if (available.size() > 0 && waiters.isEmpty()) {
      return grant(userId, idempotencyKey, null);
    }
    switch (settings.overflow()) {
      case EVICT_OLDEST -> {
        Token oldest = active.head();
        if (oldest == null) {
          throw new ApiException(ErrorCode.INTERNAL, "No available tokens. This should not happen.");
        }
        Lease ending = oldest.lease;
        Grant.Evicted evicted = new Grant.Evicted(oldest.id, ending.userId, ending.generation,
            Math.max(0, (nowNanos - ending.startedNanos) / 1_000_000L));
        end(oldest, EndReason.EVICTED, clock.millis());
        return grant(userId, idempotencyKey, evicted);
      }
      case REJECT -> {
        rejected++;
        throw full(nowNanos);
      }
      default -> {
        long wait = Math.min(waitNanos, settings.maxWait().toNanos());
        if (waitHandle == null || wait <= 0) {
          rejected++;
          throw full(nowNanos);
        }
        if (!group.mayWait()) {
          throw new ApiException(ErrorCode.UNAVAILABLE,
              "Too many activations are waiting for a token; try again shortly.", 1);
        }
        if (waiters.putIfAbsent(waitHandle, new Waiter(waitHandle, userId, idempotencyKey, nowNanos,
            nowNanos + wait)) != null) {
          throw new IllegalArgumentException("this activation is waiting already");
        }
        group.waiters++;
        group.waiting.add(this);
        return null;
      }
    }
  }

  private Grant repeat(IdempotencyKeys.Entry known, UUID userId) {
    if (!known.lease.userId.equals(userId)) {
      throw new ApiException(ErrorCode.UNPROCESSABLE, "Idempotency-Key was used by another user.");
    }
    if (!known.alive()) {
      throw new ApiException(ErrorCode.CONFLICT, "The lease for this Idempotency-Key has ended.");
    }
    return new Grant(view(known.token), known.lease.evicted, true);
  }

  private void checkBlocked(long nowNanos) {
    if (!group.blocked) {
      return;
    }
    if (nowNanos - group.blockedUntilNanos < 0) {
      throw new ApiException(ErrorCode.UNAVAILABLE,
          "The pool is recovering from an unclean stop; activations resume at "
              + Instant.ofEpochMilli(group.blockedUntilMillis).truncatedTo(java.time.temporal.ChronoUnit.SECONDS) + ".",
          wholeSecondsUntil(group.blockedUntilNanos, nowNanos));
    }
    group.blocked = false;
  }

  private void checkUserLimit(UUID userId) {
    int limit = settings.maxLeasesPerUser();
    if (limit > 0 && leasesByUser.getOrDefault(userId, 0) >= limit) {
      throw new ApiException(ErrorCode.CONFLICT, "User already holds " + limit + " tokens in pool " + name + ".");
    }
  }

  /**
   * The monotonic time a lease's deadline counts from, read just after the wall clock that stamps
   * its start and expiry: if the thread stalls between the two reads (GC, SIGSTOP), the deadline
   * falls late, never before the expiry its holder is told; read the other way round, a stall would
   * free the token to the next user while the holder still believed it held it.
   */
  private long leaseNanos() {
    return nanoTime.getAsLong();
  }

  /** The refusal of a full pool, with the whole seconds until the next lease is due to end. */
  private ApiException full(long nowNanos) {
    Token next = active.head();
    return new ApiException(ErrorCode.CONFLICT, "No token available in pool " + name + ".",
        next == null ? 1 : wholeSecondsUntil(next.lease.deadlineNanos, nowNanos));
  }

  /** Leases the available token released longest ago. */
  private Grant grant(UUID userId, String idempotencyKey, Grant.Evicted evicted) {
    long nowMillis = clock.millis();
    long nowNanos = leaseNanos();
    Token token = available.head();
    removeFrom(available, token);
    Lease lease = new Lease(userId, ++group.lastGeneration, nowMillis, nowNanos, idempotencyKey, evicted,
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
      token.noticeRevoked = false;
    }
    addActive(token);
    countLease(userId, 1);
    if (idempotencyKey != null) {
      keys.remember(token, lease, nowNanos + ttlNanos);
    }
    group.changes.add(PoolChange.of(name, PoolChange.Kind.GRANTED, token, lease, PoolChange.NO_TIME, null));
    return new Grant(view(token), evicted, false);
  }

  /**
   * Grants free tokens to the activations waiting, first come first served, for as long as both
   * last (and fencing numbers are reserved); each ends as a {@link WaitOutcome}. A waiter whose user
   * has meanwhile reached the pool's limit is refused; one whose Idempotency-Key was granted
   * meanwhile is answered that grant.
   */
  public void serveWaiters() {
    if (waiters.isEmpty()) {
      return;
    }
    long nowNanos = nanoTime.getAsLong();
    Iterator<Waiter> queue = waiters.values().iterator();
    while (queue.hasNext() && available.size() > 0 && !group.blocked
        && group.lastGeneration < group.generationLimit) {
      Waiter waiter = queue.next();
      queue.remove();
      group.waiters--;
      long waited = Math.max(0, (nowNanos - waiter.sinceNanos) / 1_000_000L);
      try {
        IdempotencyKeys.Entry known = waiter.idempotencyKey == null ? null : keys.find(waiter.idempotencyKey);
        Grant grant;
        if (known != null) {
          grant = repeat(known, waiter.userId);
        } else {
          checkUserLimit(waiter.userId);
          grant = grant(waiter.userId, waiter.idempotencyKey, null);
        }
        group.outcomes.add(new WaitOutcome(waiter.handle, name, grant, null, waited));
      } catch (ApiException refused) {
        group.outcomes.add(new WaitOutcome(waiter.handle, name, null, refused, waited));
      }
    }
    if (waiters.isEmpty()) {
      group.waiting.remove(this);
    }
  }

  /**
   * Takes a waiting activation out of the queue (its caller went away): it is never granted.
   *
   * @return whether it was still waiting
   */
  public boolean cancelWait(Object handle) {
    if (waiters.remove(handle) == null) {
      return false;
    }
    group.waiters--;
    if (waiters.isEmpty()) {
      group.waiting.remove(this);
    }
    return true;
  }

  /** Refuses every waiting activation with this answer (their outcomes are the group's). */
  public void refuseWaiters(ApiException refusal) {
    long nowNanos = nanoTime.getAsLong();
    for (Waiter waiter : waiters.values()) {
      group.outcomes.add(new WaitOutcome(waiter.handle, name, null, refusal,
          Math.max(0, (nowNanos - waiter.sinceNanos) / 1_000_000L)));
    }
    group.waiters -= waiters.size();
    waiters.clear();
    group.waiting.remove(this);
  }

  public int waiterCount() {
    return waiters.size();
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

  /**
   * Extends the holder's lease to one TTL from now, or to its grant plus the pool's {@code max_hold}
   * if that is sooner; a lease that already ends there cannot be extended (409).
   */
  public TokenView renew(UUID tokenId, UUID userId, Long generation) {
    expireDue();
    Token token = heldBy(tokenId, userId, generation);
    Lease lease = token.lease;
    long nowMillis = clock.millis();
    long nowNanos = leaseNanos();
    long expiresAt = nowMillis + ttlMillis;
    long deadline = nowNanos + ttlNanos;
    Duration maxHold = settings.maxHold();
    if (maxHold != null) {
      long capMillis = lease.startedAtMillis + maxHold.toMillis();
      if (lease.expiresAtMillis >= capMillis) {
        throw new ApiException(ErrorCode.CONFLICT, "Lease reached its maximum hold time.");
      }
      if (expiresAt > capMillis) {
        expiresAt = capMillis;
        deadline = lease.startedNanos + maxHold.toNanos();
      }
    }
    removeActive(token);
    if (undo != null) {
      undo.leaseTimes(lease);
    }
    lease.expiresAtMillis = expiresAt;
    lease.deadlineNanos = deadline;
    addActive(token);
    group.changes.add(PoolChange.of(name, PoolChange.Kind.RENEWED, token, lease, PoolChange.NO_TIME, null));
    return view(token);
  }

  /**
   * Ends the current lease of a token now, whoever holds it (an operator's decision); its holder is
   * told "revoked" as an evicted holder is told "evicted".
   *
   * @return the token as it is now, with {@link TokenView#generation()} of the lease that ended
   */
  public TokenView revoke(UUID tokenId) {
    expireDue();
    Token token = find(tokenId);
    if (token.lease == null) {
      throw new ApiException(ErrorCode.CONFLICT, "Token is not active.");
    }
    long ended = token.lease.generation;
    end(token, EndReason.REVOKED, clock.millis());
    return view(token, ended);
  }

  /**
   * The token whose lease the caller holds, or the refusal that says why not. The holder of the
   * token's last evicted (or revoked) lease hears so, unless it names another generation.
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
      throw new ApiException(ErrorCode.CONFLICT, token.noticeRevoked ? "Token was revoked." : "Token was evicted.");
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

  /**
   * Adds fresh tokens at the end of the creation order, free at once (the pool grows). Not
   * undoable: the owner adds them once the database holds them.
   */
  public void addTokens(List<PoolSnapshot.StoredToken> fresh) {
    List<Token> added = new ArrayList<>(fresh.size());
    for (PoolSnapshot.StoredToken row : fresh) {
      Token token = token(row);
      if (tokensById.putIfAbsent(token.id, token) != null) {
        throw new IllegalArgumentException("duplicate token id " + token.id);
      }
      added.add(token);
    }
    Token[] grown = Arrays.copyOf(tokensInOrder, tokensInOrder.length + added.size());
    for (int i = 0; i < added.size(); i++) {
      grown[tokensInOrder.length + i] = added.get(i);
    }
    Arrays.sort(grown, Comparator.comparingInt(t -> t.seq));
    tokensInOrder = grown;
    // Never used, they are handed out first (as at start-up), in creation order.
    for (int i = added.size() - 1; i >= 0; i--) {
      available.insertAfter(null, added.get(i));
    }
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
   * Retires every lease whose deadline has passed, each ending at its own expiry instant, refuses
   * the waits that ran out, and lets go of the Idempotency-Keys whose time has come.
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
    if (!waiters.isEmpty()) {
      expireWaits(nowNanos);
    }
    return nowNanos;
  }

  private void expireWaits(long nowNanos) {
    Iterator<Waiter> queue = waiters.values().iterator();
    ApiException refusal = null;
    while (queue.hasNext()) {
      Waiter waiter = queue.next();
      if (nowNanos - waiter.deadlineNanos >= 0) {
        queue.remove();
        group.waiters--;
        timedOut++;
        refusal = refusal == null ? full(nowNanos) : refusal;
        group.outcomes.add(new WaitOutcome(waiter.handle, name, null, refusal,
            Math.max(0, (nowNanos - waiter.sinceNanos) / 1_000_000L)));
      }
    }
    if (waiters.isEmpty()) {
      group.waiting.remove(this);
    }
  }

  /** Changes recorded since the last call, in the order they happened (of the whole group). */
  public List<PoolChange> drainChanges() {
    return group.drainChanges();
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
    settings(new PoolSettings(name, settings.leaseTtl(), policy,
        policy == Overflow.WAIT ? settings.maxWait() : Duration.ZERO, settings.maxHold(), settings.maxLeasesPerUser()));
  }

  /** Sets the most leases one user may hold at once (0: no limit) for the activations that follow. */
  public void maxLeasesPerUser(int limit) {
    settings(new PoolSettings(name, settings.leaseTtl(), settings.overflow(), settings.maxWait(), settings.maxHold(),
        limit));
  }

  /** Counts a lease granted (+1) or ended (-1) for its user, undoably. */
  private void countLease(UUID userId, int delta) {
    adjustCount(userId, delta);
    if (undo != null) {
      undo.step(() -> adjustCount(userId, -delta));
    }
  }

  /** A user whose count reaches 0 leaves the map. */
  private void adjustCount(UUID userId, int delta) {
    leasesByUser.merge(userId, delta, (count, change) -> count + change == 0 ? null : count + change);
  }

  /** Activations refused at once because the pool was full (not waiting, or asked not to wait), since start. */
  public long rejectedCount() {
    return rejected;
  }

  /** Waits that ran out, since start. */
  public long timedOutCount() {
    return timedOut;
  }

  /** At least one: a Retry-After never says "now" for something that is not possible now. */
  private static long wholeSecondsUntil(long deadlineNanos, long nowNanos) {
    return Math.max(1, (deadlineNanos - nowNanos + 999_999_999L) / 1_000_000_000L);
  }

  public long lastGeneration() {
    return group.lastGeneration();
  }

  /** See {@link PoolGroup#limitGenerations(long)}. */
  public void limitGenerations(long upTo) {
    group.limitGenerations(upTo);
  }

  /** See {@link PoolGroup#undoMark()}. */
  public long undoMark() {
    return group.undoMark();
  }

  /** See {@link PoolGroup#undoTo(long)}. */
  public void undoTo(long mark) {
    group.undoTo(mark);
  }

  /** See {@link PoolGroup#forgetBefore(long)}. */
  public void forgetBefore(long mark) {
    group.forgetBefore(mark);
  }

  /** The group this pool belongs to. */
  public PoolGroup group() {
    return group;
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
    removeActive(token);
    saveState(token);
    token.lease = null;
    token.releasedAtMillis = endedAtMillis;
    if (reason == EndReason.EVICTED || reason == EndReason.REVOKED) {
      token.evictedUserId = lease.userId;
      token.evictedGeneration = lease.generation;
      token.noticeRevoked = reason == EndReason.REVOKED;
    }
    appendTo(available, token);
    countLease(lease.userId, -1);
    keys.ended(lease);
    group.changes.add(PoolChange.of(name, PoolChange.Kind.ENDED, token, lease, endedAtMillis, reason));
  }

  private void saveState(Token token) {
    if (undo != null) {
      undo.tokenState(token);
    }
  }

  private void addActive(Token token) {
    active.add(token);
    if (undo != null) {
      undo.added(active, token);
    }
  }

  /** Called while the token still has its lease, whose deadline places it. */
  private void removeActive(Token token) {
    active.remove(token);
    if (undo != null) {
      undo.removed(active, token);
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
