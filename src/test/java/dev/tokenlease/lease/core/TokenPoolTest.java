package dev.tokenlease.lease.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("TokenPool")
class TokenPoolTest {
  private static final Duration TTL = Duration.ofMinutes(2);
  private static final Instant T0 = Instant.parse("2025-12-19T15:12:02Z");

  private ManualTime time;
  private List<UUID> ids;

  @BeforeEach
  void setUp() {
    time = new ManualTime(T0);
  }

  private TokenPool pool(int size) {
    return restore(freshSnapshot(size));
  }

  /** A pool that can undo, as in durable mode. */
  private TokenPool undoablePool(int size) {
    return new TokenPool(freshSnapshot(size), TTL, time, time::nanoTime, true);
  }

  private PoolSnapshot freshSnapshot(int size) {
    ids = new ArrayList<>();
    List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
    for (int i = 1; i <= size; i++) {
      UUID id = new UUID(0, i);
      ids.add(id);
      tokens.add(new PoolSnapshot.StoredToken(id, i, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0));
    }
    return new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME);
  }

  private TokenPool restore(PoolSnapshot snapshot) {
    return new TokenPool(snapshot, TTL, time, time::nanoTime);
  }

  private static UUID user(int n) {
    return new UUID(1, n);
  }

  @Test
  @DisplayName("a new pool has every token available, in creation order")
  void freshPool() {
    TokenPool pool = pool(5);
    assertThat(pool.list(null)).extracting(TokenView::tokenId).containsExactlyElementsOf(ids);
    assertThat(pool.list(TokenState.AVAILABLE)).hasSize(5);
    assertThat(pool.list(TokenState.ACTIVE)).isEmpty();
    TokenView view = pool.get(ids.get(0));
    assertThat(view.state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(view.currentUserId()).isNull();
    assertThat(view.activatedAt()).isNull();
    assertThat(view.releasedAt()).isNull();
    assertThat(view.usageCount()).isZero();
  }

  @Test
  @DisplayName("activation leases an available token until one TTL later and counts the use")
  void activation() {
    TokenPool pool = pool(3);
    TokenView granted = pool.activate(user(1)).lease();
    assertThat(granted.tokenId()).isEqualTo(ids.get(0));
    assertThat(granted.state()).isEqualTo(TokenState.ACTIVE);
    assertThat(granted.currentUserId()).isEqualTo(user(1));
    assertThat(granted.activatedAt()).isEqualTo(T0);
    assertThat(granted.expiresAt()).isEqualTo(T0.plus(TTL));
    assertThat(granted.usageCount()).isEqualTo(1);
    assertThat(granted.generation()).isEqualTo(1);
    assertThat(pool.activeCount()).isEqualTo(1);
    assertThat(pool.drainChanges()).singleElement().satisfies(change -> {
      assertThat(change.kind()).isEqualTo(PoolChange.Kind.GRANTED);
      assertThat(change.userId()).isEqualTo(user(1));
      assertThat(change.endedAtMillis()).isEqualTo(PoolChange.NO_TIME);
    });
  }

  @Test
  @DisplayName("generations only go up, across tokens and users")
  void generationsIncrease() {
    TokenPool pool = pool(2);
    long previous = 0;
    for (int i = 0; i < 10; i++) {
      long generation = pool.activate(user(i)).lease().generation();
      assertThat(generation).isGreaterThan(previous);
      previous = generation;
    }
  }

  @Test
  @DisplayName("when every token is active, the oldest lease is evicted and its token goes to the caller")
  void evictionOfOldest() {
    TokenPool pool = pool(3);
    for (int i = 1; i <= 3; i++) {
      pool.activate(user(i));
      time.advance(Duration.ofSeconds(1));
    }
    pool.drainChanges();
    TokenView granted = pool.activate(user(4)).lease();
    assertThat(granted.tokenId()).isEqualTo(ids.get(0));
    assertThat(granted.currentUserId()).isEqualTo(user(4));
    assertThat(pool.activeCount()).isEqualTo(3);
    List<PoolChange> changes = pool.drainChanges();
    assertThat(changes).extracting(PoolChange::kind).containsExactly(PoolChange.Kind.ENDED, PoolChange.Kind.GRANTED);
    assertThat(changes.get(0).endReason()).isEqualTo(EndReason.EVICTED);
    assertThat(changes.get(0).userId()).isEqualTo(user(1));
    assertThat(changes.get(0).endedAtMillis()).isEqualTo(T0.plusSeconds(3).toEpochMilli());
    // Next eviction takes the next oldest.
    assertThat(pool.activate(user(5)).lease().tokenId()).isEqualTo(ids.get(1));
  }

  @Test
  @DisplayName("with overflow reject, a full pool refuses 409 with the seconds until the next lease ends, and changes nothing")
  void rejectWhenFull() {
    TokenPool pool = pool(2);
    pool.overflow(Overflow.REJECT);
    TokenView first = pool.activate(user(1), "key-1").lease();
    time.advance(Duration.ofSeconds(30));
    pool.activate(user(2));
    pool.drainChanges();
    time.advance(Duration.ofMillis(500));
    assertThatThrownBy(() -> pool.activate(user(3)))
        .isInstanceOfSatisfying(dev.tokenlease.platform.ApiException.class, e -> {
          assertThat(e.error()).isEqualTo(dev.tokenlease.platform.ErrorCode.CONFLICT);
          assertThat(e.getMessage()).isEqualTo("No token available in pool default.");
          // The first lease ends at T0 + 2 min; 89.5 s from now, rounded up.
          assertThat(e.retryAfterSeconds()).isEqualTo(90);
        });
    assertThat(pool.drainChanges()).isEmpty();
    assertThat(pool.activeCount()).isEqualTo(2);
    assertThat(pool.rejectedCount()).isEqualTo(1);
    assertThat(pool.activate(user(1), "key-1").lease().tokenId()).as("a keyed retry is still answered").isEqualTo(first.tokenId());
    pool.release(first.tokenId(), user(1), null);
    assertThat(pool.activate(user(3)).lease().tokenId()).isEqualTo(first.tokenId());
    pool.overflow(Overflow.EVICT_OLDEST);
    assertThat(pool.activate(user(4)).evicted()).as("evicts again once the policy changes back").isNotNull();
  }

  @Test
  @DisplayName("a user at max_leases_per_user is refused 409 until one of its leases ends; an undone grant frees its place")
  void leasesPerUser() {
    TokenPool pool = undoablePool(5);
    pool.activate(user(9));
    pool.maxLeasesPerUser(2);
    TokenView held = pool.activate(user(1)).lease();
    long mark = pool.undoMark();
    pool.activate(user(1));
    assertThatThrownBy(() -> pool.activate(user(1)))
        .isInstanceOfSatisfying(dev.tokenlease.platform.ApiException.class, e -> {
          assertThat(e.error()).isEqualTo(dev.tokenlease.platform.ErrorCode.CONFLICT);
          assertThat(e.getMessage()).isEqualTo("User already holds 2 tokens in pool default.");
        });
    pool.activate(user(9));
    assertThatThrownBy(() -> pool.activate(user(9))).as("leases held before the limit was set count")
        .hasMessage("User already holds 2 tokens in pool default.");
    pool.undoTo(mark);
    assertThat(pool.activeCount()).isEqualTo(2);
    pool.activate(user(1));
    assertThatThrownBy(() -> pool.activate(user(1))).hasMessage("User already holds 2 tokens in pool default.");
    pool.release(held.tokenId(), user(1), null);
    assertThat(pool.activate(user(1)).lease().currentUserId()).isEqualTo(user(1));
    time.advance(TTL);
    pool.expireDue();
    assertThat(pool.activeCount()).isZero();
    pool.activate(user(1));
    pool.activate(user(1));
    assertThat(pool.activeCount()).as("expiries free the places too").isEqualTo(2);
  }

  @Test
  @DisplayName("an eviction is named in the activation's answer, with how long the evicted lease was held")
  void evictionInTheAnswer() {
    TokenPool pool = pool(2);
    Grant first = pool.activate(user(1));
    assertThat(first.evicted()).as("a free token was granted").isNull();
    time.advance(Duration.ofSeconds(5));
    pool.activate(user(2));
    time.advance(Duration.ofSeconds(3));
    // A renewal moves the lease behind the others but does not restart how long it has been held.
    pool.renew(first.lease().tokenId(), user(1), null);
    time.advance(Duration.ofMillis(1_250));
    Grant third = pool.activate(user(3));
    assertThat(third.evicted()).isEqualTo(new Grant.Evicted(ids.get(1), user(2), 2, 4_250));
    assertThat(third.lease().tokenId()).isEqualTo(ids.get(1));
    assertThat(third.repeated()).isFalse();
    // Measured on the monotonic clock: a wall-clock step does not change it.
    time.stepWall(Duration.ofHours(-1));
    time.advance(Duration.ofSeconds(1));
    assertThat(pool.activate(user(4)).evicted()).isEqualTo(new Grant.Evicted(ids.get(0), user(1), 1, 10_250));
  }

  private static void assertConflict(Runnable call, String message) {
    assertRefused(call, ErrorCode.CONFLICT, message);
  }

  private static void assertRefused(Runnable call, ErrorCode error, String message) {
    assertThatThrownBy(call::run)
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(error))
        .hasMessage(message);
  }

  @Test
  @DisplayName("the evicted holder's release or renew is told the token was evicted; other callers and generations are not")
  void evictedHolderIsTold() {
    TokenPool pool = pool(1);
    Grant evictedGrant = pool.activate(user(1));
    UUID token = evictedGrant.lease().tokenId();
    long evicted = evictedGrant.lease().generation();
    Grant taker = pool.activate(user(2));
    pool.drainChanges();
    assertConflict(() -> pool.release(token, user(1), null), "Token was evicted.");
    assertConflict(() -> pool.renew(token, user(1), null), "Token was evicted.");
    assertConflict(() -> pool.release(token, user(1), evicted), "Token was evicted.");
    assertConflict(() -> pool.renew(token, user(1), evicted), "Token was evicted.");
    // Another generation is not the evicted lease; another user never held it.
    assertConflict(() -> pool.renew(token, user(1), evicted + 5), "Token is held by another user.");
    assertConflict(() -> pool.release(token, user(3), null), "Token is held by another user.");
    assertThat(pool.drainChanges()).as("refusals change nothing").isEmpty();
    assertThat(pool.get(token).currentUserId()).isEqualTo(user(2));

    // The notice outlives the lease that took the token.
    pool.release(token, user(2), taker.lease().generation());
    assertConflict(() -> pool.release(token, user(1), null), "Token was evicted.");
    assertConflict(() -> pool.release(token, user(2), null), "Token is not active.");
    time.advance(TTL.multipliedBy(10));
    assertConflict(() -> pool.renew(token, user(1), evicted), "Token was evicted.");
  }

  @Test
  @DisplayName("a token's notice lasts until it is evicted again or its evicted holder leases it again")
  void evictionNoticeLifetime() {
    TokenPool pool = pool(1);
    UUID token = pool.activate(user(1)).lease().tokenId();
    pool.activate(user(2));
    Grant third = pool.activate(user(3));
    assertThat(third.evicted().userId()).isEqualTo(user(2));
    // One notice per token: the last eviction's.
    assertConflict(() -> pool.release(token, user(1), null), "Token is held by another user.");
    assertConflict(() -> pool.release(token, user(2), null), "Token was evicted.");

    pool.release(token, user(3), null);
    Grant again = pool.activate(user(2));
    assertThat(again.lease().tokenId()).isEqualTo(token);
    assertConflict(() -> pool.release(token, user(2), third.evicted().generation()),
        "Stale generation " + third.evicted().generation() + ": the token has been leased again since.");
    pool.release(token, user(2), null);
    assertConflict(() -> pool.release(token, user(2), null), "Token is not active.");
  }

  @Test
  @DisplayName("undo takes back an eviction notice given and one superseded")
  void undoEvictionNotice() {
    TokenPool pool = undoablePool(1);
    UUID token = pool.activate(user(1)).lease().tokenId();
    long mark = pool.undoMark();
    pool.activate(user(2));
    assertConflict(() -> pool.release(token, user(1), null), "Token was evicted.");
    pool.undoTo(mark);
    assertThat(pool.renew(token, user(1), null).currentUserId()).isEqualTo(user(1));

    pool.activate(user(2));
    long superseded = pool.undoMark();
    // User 1 takes the token back: its notice goes, and user 2 gets one.
    assertThat(pool.activate(user(1)).evicted().userId()).isEqualTo(user(2));
    assertThat(pool.release(token, user(1), null).state()).isEqualTo(TokenState.AVAILABLE);
    assertConflict(() -> pool.release(token, user(1), null), "Token is not active.");
    pool.undoTo(superseded);
    assertConflict(() -> pool.release(token, user(1), null), "Token was evicted.");
    assertConflict(() -> pool.release(token, user(3), null), "Token is held by another user.");
    assertThat(pool.get(token).currentUserId()).isEqualTo(user(2));
  }

  private static final String ENDED = "The lease for this Idempotency-Key has ended.";

  @Test
  @DisplayName("a retry under the same Idempotency-Key by the same user answers the same lease, as renewed, and changes nothing")
  void idempotentRetry() {
    TokenPool pool = pool(3);
    Grant first = pool.activate(user(1), "order-17");
    pool.drainChanges();
    time.advance(Duration.ofSeconds(10));
    Grant retry = pool.activate(user(1), "order-17");
    assertThat(retry.repeated()).isTrue();
    assertThat(retry.lease()).isEqualTo(first.lease());
    assertThat(retry.evicted()).isNull();
    assertThat(pool.drainChanges()).as("a retry writes nothing").isEmpty();
    assertThat(pool.activeCount()).isEqualTo(1);
    assertThat(pool.lastGeneration()).isEqualTo(first.lease().generation());

    time.advance(Duration.ofSeconds(10));
    TokenView renewed = pool.renew(first.lease().tokenId(), user(1), null);
    pool.drainChanges();
    Grant afterRenewal = pool.activate(user(1), "order-17");
    assertThat(afterRenewal.lease().expiresAt()).isEqualTo(T0.plusSeconds(20).plus(TTL)).isEqualTo(renewed.expiresAt());
    assertThat(afterRenewal.lease().generation()).isEqualTo(first.lease().generation());
    assertThat(afterRenewal.lease().usageCount()).isEqualTo(1);
    assertThat(pool.drainChanges()).isEmpty();

    // Another key, or none, is another activation.
    assertThat(pool.activate(user(1), "order-18").lease().tokenId()).isNotEqualTo(first.lease().tokenId());
    assertThat(pool.activate(user(1)).repeated()).isFalse();
    assertThat(pool.activeCount()).isEqualTo(3);
  }

  @Test
  @DisplayName("a retry answers the eviction the first answer named")
  void retryOfAnEvictingGrant() {
    TokenPool pool = pool(1);
    pool.activate(user(1));
    Grant first = pool.activate(user(2), "k");
    assertThat(pool.activate(user(2), "k")).isEqualTo(new Grant(first.lease(), first.evicted(), true));
  }

  @Test
  @DisplayName("the same Idempotency-Key from another user is refused with 422, while its lease lives and after")
  void keyOfAnotherUser() {
    TokenPool pool = pool(2);
    Grant first = pool.activate(user(1), "shared");
    pool.drainChanges();
    assertRefused(() -> pool.activate(user(2), "shared"), ErrorCode.UNPROCESSABLE,
        "Idempotency-Key was used by another user.");
    pool.release(first.lease().tokenId(), user(1), null);
    pool.drainChanges();
    assertRefused(() -> pool.activate(user(2), "shared"), ErrorCode.UNPROCESSABLE,
        "Idempotency-Key was used by another user.");
    assertThat(pool.drainChanges()).isEmpty();
    assertThat(pool.activeCount()).isZero();
  }

  @Test
  @DisplayName("a key whose lease was released or evicted gets 409 until one TTL from its grant, then activates anew")
  void keyOfAnEndedLease() {
    TokenPool pool = pool(1);
    Grant first = pool.activate(user(1), "k");
    time.advance(Duration.ofSeconds(5));
    pool.release(first.lease().tokenId(), user(1), null);
    pool.drainChanges();
    assertRefused(() -> pool.activate(user(1), "k"), ErrorCode.CONFLICT, ENDED);
    time.advance(TTL.minusSeconds(5).minusMillis(1));
    assertRefused(() -> pool.activate(user(1), "k"), ErrorCode.CONFLICT, ENDED);
    assertThat(pool.drainChanges()).isEmpty();
    time.advance(Duration.ofMillis(1));
    Grant again = pool.activate(user(1), "k");
    assertThat(again.repeated()).isFalse();
    assertThat(again.lease().generation()).isGreaterThan(first.lease().generation());

    // Evicted: the same.
    pool.activate(user(2));
    assertRefused(() -> pool.activate(user(1), "k"), ErrorCode.CONFLICT, ENDED);
  }

  @Test
  @DisplayName("an expired lease's key is forgotten with it; a renewed lease keeps its key while it lives")
  void keyLifetime() {
    TokenPool pool = pool(2);
    Grant expiring = pool.activate(user(1), "expires");
    Grant renewing = pool.activate(user(2), "renewed");
    time.advance(Duration.ofSeconds(100));
    pool.renew(renewing.lease().tokenId(), user(2), null);
    time.advance(Duration.ofSeconds(20));
    // One TTL after both grants: the first lease expired and its key with it.
    Grant anew = pool.activate(user(1), "expires");
    assertThat(anew.repeated()).isFalse();
    assertThat(anew.lease().generation()).isGreaterThan(expiring.lease().generation());
    pool.release(anew.lease().tokenId(), user(1), null);

    time.advance(Duration.ofSeconds(60));
    Grant retry = pool.activate(user(2), "renewed");
    assertThat(retry.repeated()).isTrue();
    assertThat(retry.lease().generation()).isEqualTo(renewing.lease().generation());
    // Past one TTL from its grant, the key goes as soon as its lease ends.
    pool.release(renewing.lease().tokenId(), user(2), null);
    assertThat(pool.activate(user(2), "renewed").repeated()).isFalse();
  }

  @Test
  @DisplayName("undo takes back a key with its activation, and brings back one whose lease an undone step ended")
  void undoKeys() {
    TokenPool pool = undoablePool(2);
    long beforeGrant = pool.undoMark();
    Grant refused = pool.activate(user(1), "k");
    pool.undoTo(beforeGrant);
    Grant granted = pool.activate(user(1), "k");
    assertThat(granted.repeated()).as("the undone grant left no key").isFalse();
    assertThat(granted.lease().generation()).isGreaterThan(refused.lease().generation());
    pool.drainChanges();

    long beforeRelease = pool.undoMark();
    pool.release(granted.lease().tokenId(), user(1), null);
    assertRefused(() -> pool.activate(user(1), "k"), ErrorCode.CONFLICT, ENDED);
    pool.undoTo(beforeRelease);
    assertThat(pool.activate(user(1), "k")).isEqualTo(new Grant(granted.lease(), null, true));

    // A key kept past its TTL only by its renewed lease: forgotten when the lease ends, back on undo.
    time.advance(Duration.ofSeconds(100));
    pool.renew(granted.lease().tokenId(), user(1), null);
    time.advance(Duration.ofSeconds(30));
    pool.expireDue();
    long beforeEnd = pool.undoMark();
    pool.release(granted.lease().tokenId(), user(1), null);
    Grant other = pool.activate(user(1), "k");
    assertThat(other.repeated()).isFalse();
    pool.undoTo(beforeEnd);
    assertThat(pool.activate(user(1), "k").lease().generation()).isEqualTo(granted.lease().generation());
  }

  @Test
  @DisplayName("at most 10,000 keys wait: beyond them the oldest ended lease's key is forgotten early, a live lease's is kept")
  void keysAreBounded() {
    TokenPool pool = pool(3);
    Grant live = pool.activate(user(9), "live");
    for (int i = 0; i <= IdempotencyKeys.QUEUED; i++) {
      Grant grant = pool.activate(user(1), "k" + i);
      pool.release(grant.lease().tokenId(), user(1), null);
    }
    pool.drainChanges();
    assertRefused(() -> pool.activate(user(1), "k1"), ErrorCode.CONFLICT, ENDED);
    assertThat(pool.activate(user(9), "live")).isEqualTo(new Grant(live.lease(), null, true));
    assertThat(pool.activate(user(1), "k0").repeated()).as("pushed out by newer keys").isFalse();
  }

  @Test
  @DisplayName("a token is never held by two users, whatever the mix of operations")
  void neverTwoHolders() {
    TokenPool pool = pool(7);
    java.util.Random random = new java.util.Random(42);
    for (int step = 0; step < 20_000; step++) {
      int op = random.nextInt(10);
      UUID who = user(random.nextInt(30));
      if (op < 6) {
        pool.activate(who);
      } else if (op < 8) {
        UUID token = ids.get(random.nextInt(ids.size()));
        try {
          if (op == 6) {
            pool.release(token, who, null);
          } else {
            pool.renew(token, who, null);
          }
        } catch (ApiException e) {
          assertThat(e.error()).isEqualTo(ErrorCode.CONFLICT);
        }
      } else if (op == 8) {
        time.advance(Duration.ofSeconds(random.nextInt(40)));
      } else if (random.nextInt(50) == 0) {
        pool.clear();
      }
      List<TokenView> active = pool.list(TokenState.ACTIVE);
      assertThat(active.size() + pool.list(TokenState.AVAILABLE).size()).isEqualTo(7);
      assertThat(active).allSatisfy(view -> assertThat(view.expiresAt()).isAfter(time.instant()));
    }
    // Replaying the change log: every grant's token is free (ended) before it is granted again.
    Set<UUID> held = new HashSet<>();
    for (PoolChange change : pool.drainChanges()) {
      if (change.kind() == PoolChange.Kind.GRANTED) {
        assertThat(held.add(change.tokenId())).as("token %s granted while held", change.tokenId()).isTrue();
      } else if (change.kind() == PoolChange.Kind.ENDED) {
        assertThat(held.remove(change.tokenId())).isTrue();
      }
    }
  }

  @Test
  @DisplayName("the token handed out is the one released longest ago; never-used tokens come first")
  void fairReuse() {
    TokenPool pool = pool(4);
    UUID a = pool.activate(user(1)).lease().tokenId();
    UUID b = pool.activate(user(2)).lease().tokenId();
    time.advance(Duration.ofSeconds(1));
    pool.release(b, user(2), null);
    time.advance(Duration.ofSeconds(1));
    pool.release(a, user(1), null);
    // Tokens 3 and 4 were never used: they go first, then b (released before a), then a.
    assertThat(pool.activate(user(3)).lease().tokenId()).isEqualTo(ids.get(2));
    assertThat(pool.activate(user(4)).lease().tokenId()).isEqualTo(ids.get(3));
    assertThat(pool.activate(user(5)).lease().tokenId()).isEqualTo(b);
    assertThat(pool.activate(user(6)).lease().tokenId()).isEqualTo(a);
  }

  @Test
  @DisplayName("a lease is over exactly at activation + TTL, and ends at that instant however late it is noticed")
  void exactExpiry() {
    TokenPool pool = pool(2);
    UUID token = pool.activate(user(1)).lease().tokenId();
    pool.drainChanges();
    time.advance(TTL.minusMillis(1));
    assertThat(pool.get(token).state()).isEqualTo(TokenState.ACTIVE);
    time.advance(Duration.ofMillis(1));
    TokenView after = pool.get(token);
    assertThat(after.state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(after.releasedAt()).isEqualTo(T0.plus(TTL));

    UUID other = pool.activate(user(2)).lease().tokenId();
    pool.drainChanges();
    time.advance(Duration.ofHours(3));
    pool.expireDue();
    assertThat(pool.drainChanges()).singleElement().satisfies(change -> {
      assertThat(change.tokenId()).isEqualTo(other);
      assertThat(change.endReason()).isEqualTo(EndReason.EXPIRED);
      assertThat(change.endedAtMillis()).isEqualTo(change.expiresAtMillis());
    });
  }

  @Test
  @DisplayName("a wall-clock step neither ends a lease early nor keeps it late")
  void wallClockSteps() {
    TokenPool pool = pool(2);
    UUID token = pool.activate(user(1)).lease().tokenId();
    time.stepWall(Duration.ofHours(1));
    assertThat(pool.get(token).state()).isEqualTo(TokenState.ACTIVE);
    time.stepWall(Duration.ofHours(-2));
    time.advance(TTL);
    assertThat(pool.get(token).state()).isEqualTo(TokenState.AVAILABLE);
  }

  @Test
  @DisplayName("a stall between the clock reads never ends a lease before the expiry its holder was told")
  void stallBetweenClockReads() {
    TokenPool pool = pool(1);
    time.pauseAtNextWallRead(Duration.ofSeconds(4));
    TokenView granted = pool.activate(user(1)).lease();
    assertThat(granted.expiresAt()).isEqualTo(granted.activatedAt().plus(TTL));
    time.advance(Duration.between(time.instant(), granted.expiresAt()).minusMillis(1));
    assertThat(pool.get(granted.tokenId()).state()).as("held until the expiry told").isEqualTo(TokenState.ACTIVE);

    time.pauseAtNextWallRead(Duration.ofSeconds(4));
    TokenView renewed = pool.renew(granted.tokenId(), user(1), granted.generation());
    time.advance(Duration.between(time.instant(), renewed.expiresAt()).minusMillis(1));
    assertThat(pool.get(granted.tokenId()).state()).as("renewed: held until the expiry told").isEqualTo(TokenState.ACTIVE);

    time.advance(Duration.ofMillis(1));
    TokenView next = pool.activate(user(2)).lease();
    assertThat(next.tokenId()).isEqualTo(granted.tokenId());
    assertThat(next.activatedAt()).isAfterOrEqualTo(renewed.expiresAt());
  }

  @Test
  @DisplayName("the holder can release early; others, stale generations and ended leases get a conflict")
  void releaseRules() {
    TokenPool pool = pool(2);
    TokenView granted = pool.activate(user(1)).lease();
    UUID token = granted.tokenId();
    assertThatThrownBy(() -> pool.release(token, user(2), null))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.CONFLICT))
        .hasMessage("Token is held by another user.");
    assertThatThrownBy(() -> pool.release(token, user(1), granted.generation() + 1))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.CONFLICT));
    assertThatThrownBy(() -> pool.release(new UUID(9, 9), user(1), null))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.NOT_FOUND));

    time.advance(Duration.ofSeconds(5));
    TokenView released = pool.release(token, user(1), granted.generation());
    assertThat(released.state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(released.releasedAt()).isEqualTo(T0.plusSeconds(5));
    assertThat(released.activatedAt()).isEqualTo(T0);
    assertThat(released.generation()).isEqualTo(granted.generation());
    assertThatThrownBy(() -> pool.release(token, user(1), null))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.CONFLICT))
        .hasMessage("Token is not active.");
  }

  @Test
  @DisplayName("a caller whose lease expired and was granted to someone else cannot act on it")
  void fencing() {
    TokenPool pool = pool(1);
    TokenView first = pool.activate(user(1)).lease();
    time.advance(TTL);
    TokenView second = pool.activate(user(1)).lease();
    assertThat(second.tokenId()).isEqualTo(first.tokenId());
    assertThatThrownBy(() -> pool.renew(first.tokenId(), user(1), first.generation()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.CONFLICT))
        .hasMessageContaining("Stale generation");
    assertThat(pool.renew(second.tokenId(), user(1), second.generation()).state()).isEqualTo(TokenState.ACTIVE);
  }

  @Test
  @DisplayName("renewal extends the lease one TTL from now and moves it behind the others for eviction")
  void renewal() {
    TokenPool pool = pool(2);
    UUID a = pool.activate(user(1)).lease().tokenId();
    time.advance(Duration.ofSeconds(10));
    UUID b = pool.activate(user(2)).lease().tokenId();
    time.advance(Duration.ofSeconds(10));
    TokenView renewed = pool.renew(a, user(1), null);
    assertThat(renewed.expiresAt()).isEqualTo(T0.plusSeconds(20).plus(TTL));
    assertThat(renewed.activatedAt()).isEqualTo(T0);
    // b now expires first, so b is evicted first.
    assertThat(pool.activate(user(3)).lease().tokenId()).isEqualTo(b);
    time.advance(TTL.minusSeconds(1));
    assertThat(pool.get(a).state()).isEqualTo(TokenState.ACTIVE);
    time.advance(Duration.ofSeconds(1));
    assertThat(pool.get(a).state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(pool.get(a).releasedAt()).isEqualTo(T0.plusSeconds(20).plus(TTL));
  }

  @Test
  @DisplayName("clearing ends every active lease and reports how many")
  void clearing() {
    TokenPool pool = pool(5);
    for (int i = 0; i < 3; i++) {
      pool.activate(user(i));
    }
    pool.drainChanges();
    assertThat(pool.clear()).isEqualTo(3);
    assertThat(pool.activeCount()).isZero();
    assertThat(pool.drainChanges()).hasSize(3).allSatisfy(c -> assertThat(c.endReason()).isEqualTo(EndReason.CLEARED));
    assertThat(pool.clear()).isZero();
  }

  @Test
  @DisplayName("activation on a new token clears released_at and keeps counting uses")
  void reactivationTimestamps() {
    TokenPool pool = pool(1);
    UUID token = pool.activate(user(1)).lease().tokenId();
    time.advance(Duration.ofSeconds(3));
    pool.release(token, user(1), null);
    time.advance(Duration.ofSeconds(3));
    TokenView again = pool.activate(user(2)).lease();
    assertThat(again.activatedAt()).isEqualTo(T0.plusSeconds(6));
    assertThat(again.releasedAt()).isNull();
    assertThat(again.usageCount()).isEqualTo(2);
  }

  @Test
  @DisplayName("restoring closes leases that ran out while down at their expiry instant and keeps the rest")
  void restore() {
    UUID a = new UUID(0, 1);
    UUID b = new UUID(0, 2);
    UUID c = new UUID(0, 3);
    long now = T0.toEpochMilli();
    PoolSnapshot snapshot = new PoolSnapshot(
        List.of(
            new PoolSnapshot.StoredToken(a, 1, now - 300_000, PoolChange.NO_TIME, 4, null, 0),
            new PoolSnapshot.StoredToken(b, 2, now - 60_000, PoolChange.NO_TIME, 2, null, 0),
            new PoolSnapshot.StoredToken(c, 3, now - 900_000, now - 800_000, 1, null, 0)),
        List.of(
            new PoolSnapshot.StoredLease(7, a, user(1), now - 300_000, now - 180_000, null, null),
            new PoolSnapshot.StoredLease(9, b, user(2), now - 60_000, now + 60_000, null, null)),
        9, PoolChange.NO_TIME);
    TokenPool pool = restore(snapshot);
    assertThat(pool.get(a).state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(pool.get(a).releasedAt()).isEqualTo(Instant.ofEpochMilli(now - 180_000));
    assertThat(pool.get(a).usageCount()).isEqualTo(4);
    assertThat(pool.get(b).currentUserId()).isEqualTo(user(2));
    assertThat(pool.get(b).generation()).isEqualTo(9);
    assertThat(pool.drainChanges()).singleElement().satisfies(change -> {
      assertThat(change.generation()).isEqualTo(7);
      assertThat(change.endReason()).isEqualTo(EndReason.EXPIRED);
      assertThat(change.endedAtMillis()).isEqualTo(now - 180_000);
    });
    // c was released before a's lease ran out, so c is handed out first.
    assertThat(pool.activate(user(3)).lease().tokenId()).isEqualTo(c);
    assertThat(pool.activate(user(4)).lease().generation()).isEqualTo(11);
    time.advance(Duration.ofSeconds(60));
    assertThat(pool.get(b).state()).isEqualTo(TokenState.AVAILABLE);
  }

  @Test
  @DisplayName("a restored lease longer than the current TTL is cut to one TTL from now")
  void restoreWithShorterTtl() {
    UUID a = new UUID(0, 1);
    long now = T0.toEpochMilli();
    PoolSnapshot snapshot = new PoolSnapshot(
        List.of(new PoolSnapshot.StoredToken(a, 1, now, PoolChange.NO_TIME, 1, null, 0)),
        List.of(new PoolSnapshot.StoredLease(1, a, user(1), now, now + 3_600_000, null, null)), 1, PoolChange.NO_TIME);
    TokenPool pool = restore(snapshot);
    assertThat(pool.get(a).expiresAt()).isEqualTo(T0.plus(TTL));
    assertThat(pool.drainChanges()).singleElement()
        .satisfies(change -> assertThat(change.kind()).isEqualTo(PoolChange.Kind.RENEWED));
  }

  @Test
  @DisplayName("what a restart restores: the keys of open leases, with the eviction they named, and each token's notice")
  void restoreKeysAndNotices() {
    UUID a = new UUID(0, 1);
    UUID b = new UUID(0, 2);
    UUID c = new UUID(0, 3);
    long now = T0.toEpochMilli();
    Grant.Evicted evicted = new Grant.Evicted(a, user(7), 4, 90_000);
    PoolSnapshot snapshot = new PoolSnapshot(
        List.of(
            new PoolSnapshot.StoredToken(a, 1, now - 30_000, PoolChange.NO_TIME, 5, user(7), 4),
            new PoolSnapshot.StoredToken(b, 2, now - 200_000, PoolChange.NO_TIME, 1, null, 0),
            new PoolSnapshot.StoredToken(c, 3, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0)),
        List.of(
            new PoolSnapshot.StoredLease(5, a, user(1), now - 30_000, now + 90_000, "recent", evicted),
            // Granted more than one TTL ago and renewed since: its key lasts as long as the lease.
            new PoolSnapshot.StoredLease(3, b, user(2), now - 200_000, now + 10_000, "renewed", null)),
        5, PoolChange.NO_TIME);
    TokenPool pool = restore(snapshot);
    pool.drainChanges();

    Grant retry = pool.activate(user(1), "recent");
    assertThat(retry.repeated()).isTrue();
    assertThat(retry.lease().generation()).isEqualTo(5);
    assertThat(retry.lease().expiresAt()).isEqualTo(T0.plusSeconds(90));
    assertThat(retry.evicted()).isEqualTo(evicted);
    assertRefused(() -> pool.activate(user(3), "recent"), ErrorCode.UNPROCESSABLE,
        "Idempotency-Key was used by another user.");
    assertThat(pool.activate(user(2), "renewed").lease().generation()).isEqualTo(3);
    assertConflict(() -> pool.release(a, user(7), 4L), "Token was evicted.");
    assertThat(pool.drainChanges()).isEmpty();

    // "recent" stays known until one TTL from its grant; "renewed" goes with its lease.
    time.advance(Duration.ofSeconds(10));
    assertThat(pool.activate(user(2), "renewed").repeated()).as("expired with its lease").isFalse();
    pool.release(a, user(1), null);
    assertRefused(() -> pool.activate(user(1), "recent"), ErrorCode.CONFLICT, ENDED);
    time.advance(Duration.ofSeconds(80));
    assertThat(pool.activate(user(1), "recent").repeated()).isFalse();
  }

  @Test
  @DisplayName("changes carry what is stored: a grant's key and the lease it evicted, and the token's notice")
  void changesCarryKeysAndNotices() {
    TokenPool pool = pool(1);
    Grant first = pool.activate(user(1), "first");
    Grant second = pool.activate(user(2), "second");
    List<PoolChange> changes = pool.drainChanges();
    assertThat(changes).extracting(PoolChange::kind)
        .containsExactly(PoolChange.Kind.GRANTED, PoolChange.Kind.ENDED, PoolChange.Kind.GRANTED);
    assertThat(changes.get(0).idempotencyKey()).isEqualTo("first");
    assertThat(changes.get(0).evictedGeneration()).isZero();
    assertThat(changes.get(0).tokenEvictedUserId()).isNull();
    PoolChange eviction = changes.get(1);
    assertThat(eviction.endReason()).isEqualTo(EndReason.EVICTED);
    assertThat(eviction.tokenEvictedUserId()).isEqualTo(user(1));
    assertThat(eviction.tokenEvictedGeneration()).isEqualTo(first.lease().generation());
    PoolChange grant = changes.get(2);
    assertThat(grant.idempotencyKey()).isEqualTo("second");
    assertThat(grant.evictedGeneration()).isEqualTo(first.lease().generation());
    assertThat(grant.tokenEvictedUserId()).isEqualTo(user(1));
    // The evicted holder takes the token back: the token's notice passes to the lease it evicts.
    pool.activate(user(1));
    assertThat(pool.drainChanges()).last().satisfies(change -> {
      assertThat(change.tokenEvictedUserId()).isEqualTo(user(2));
      assertThat(change.tokenEvictedGeneration()).isEqualTo(second.lease().generation());
    });
  }

  @Test
  @DisplayName("after an unclean stop in memory mode, activations wait until lost grants must have expired")
  void blockedActivations() {
    UUID a = new UUID(0, 1);
    PoolSnapshot snapshot = new PoolSnapshot(
        List.of(new PoolSnapshot.StoredToken(a, 1, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0)), List.of(), 0,
        T0.plusSeconds(30).toEpochMilli());
    TokenPool pool = restore(snapshot);
    assertThatThrownBy(() -> pool.activate(user(1)))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.UNAVAILABLE))
        .hasMessageContaining("2025-12-19T15:12:32Z");
    time.advance(Duration.ofSeconds(30));
    assertThat(pool.activate(user(1)).lease().tokenId()).isEqualTo(a);
  }

  /** What can be seen of a pool: every token, and the order in which it would hand them out. */
  private static List<Object> observable(TokenPool pool, int size) {
    List<Object> seen = new ArrayList<>(pool.list(null));
    seen.add(pool.activeCount());
    seen.add(pool.availableCount());
    return seen;
  }

  @Test
  @DisplayName("undo puts back leases, queues and counters exactly, through grants, evictions, releases, renewals, expiries and clears")
  void undoRestoresExactly() {
    List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
    ids = new ArrayList<>();
    for (int i = 1; i <= 4; i++) {
      ids.add(new UUID(0, i));
      tokens.add(new PoolSnapshot.StoredToken(ids.get(i - 1), i, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0));
    }
    TokenPool pool = new TokenPool(new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME), TTL, time, time::nanoTime, true);
    TokenView a = pool.activate(user(1)).lease();
    time.advance(Duration.ofSeconds(10));
    TokenView b = pool.activate(user(2)).lease();
    time.advance(Duration.ofSeconds(10));
    pool.activate(user(3));
    pool.release(a.tokenId(), user(1), a.generation());
    pool.drainChanges();
    List<Object> before = observable(pool, 4);
    long mark = pool.undoMark();

    time.advance(Duration.ofSeconds(5));
    pool.renew(b.tokenId(), user(2), b.generation());
    pool.activate(user(4));
    pool.activate(user(5));
    pool.activate(user(6)); // evicts the oldest lease
    time.advance(TTL.minusSeconds(30)); // user 3's lease expires
    pool.get(b.tokenId());
    pool.clear();
    pool.activate(user(7));
    long lastGeneration = pool.lastGeneration();

    pool.undoTo(mark);
    assertThat(pool.drainChanges()).isEmpty();
    assertThat(observable(pool, 4)).isEqualTo(before);
    // Generations are not taken back: the next grant gets a new one.
    TokenView next = pool.activate(user(8)).lease();
    assertThat(next.generation()).isEqualTo(lastGeneration + 1);
    // The pool hands out what it would have at the mark: the never-used token before the released one.
    assertThat(next.tokenId()).isEqualTo(ids.get(3));
    assertThat(pool.list(TokenState.ACTIVE)).extracting(TokenView::currentUserId).containsExactly(user(2), user(3), user(8));
  }

  @Test
  @DisplayName("steps before a forgotten mark cannot be undone; steps after it still can")
  void forgetBefore() {
    TokenPool pool = new TokenPool(new PoolSnapshot(List.of(
        new PoolSnapshot.StoredToken(new UUID(0, 1), 1, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0),
        new PoolSnapshot.StoredToken(new UUID(0, 2), 2, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0)),
        List.of(), 0, PoolChange.NO_TIME), TTL, time, time::nanoTime, true);
    pool.activate(user(1));
    long kept = pool.undoMark();
    pool.activate(user(2));
    pool.forgetBefore(kept);
    pool.undoTo(kept);
    assertThat(pool.list(TokenState.ACTIVE)).extracting(TokenView::currentUserId).containsExactly(user(1));
    assertThatThrownBy(() -> pool.undoTo(0)).isInstanceOf(IllegalStateException.class);
  }

  @Test
  @DisplayName("activations refuse with 503 beyond the generations reserved in the database")
  void generationLimit() {
    TokenPool pool = pool(3);
    pool.limitGenerations(2);
    pool.activate(user(1));
    pool.activate(user(2));
    assertThatThrownBy(() -> pool.activate(user(3)))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.UNAVAILABLE));
    assertThat(pool.activeCount()).isEqualTo(2);
    pool.limitGenerations(10);
    assertThat(pool.activate(user(3)).lease().generation()).isEqualTo(3);
  }
}
