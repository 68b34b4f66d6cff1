package dev.tokenlease.lease.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Several pools in one group, waiting activations, the hold cap, revocation, growth, settings changes. */
@DisplayName("PoolGroup: named pools, waiting, max_hold, revoke")
class PoolGroupTest {
  private static final Duration TTL = Duration.ofMinutes(1);
  private static final Instant T0 = Instant.parse("2025-12-19T15:12:02Z");
  private static final long SECOND = 1_000_000_000L;

  private ManualTime time;
  private PoolGroup group;
  private int nextToken;

  @BeforeEach
  void setUp() {
    time = new ManualTime(T0);
    group = new PoolGroup(time, time::nanoTime, true, 0, PoolChange.NO_TIME, 3);
    nextToken = 0;
  }

  private PoolSnapshot fresh(int size) {
    List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
    for (int i = 1; i <= size; i++) {
      tokens.add(PoolSnapshot.StoredToken.fresh(new UUID(7, ++nextToken), i));
    }
    return new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME);
  }

  private TokenPool waiting(String name, int size, Duration maxWait) {
    return group.add(new PoolSettings(name, TTL, Overflow.WAIT, maxWait, null, 0), fresh(size));
  }

  private static UUID user(int n) {
    return new UUID(1, n);
  }

  @Test
  @DisplayName("pools share one sequence of fencing numbers and one change list, each change naming its pool")
  void sharedGenerations() {
    TokenPool a = group.add(PoolSettings.evicting("a", TTL), fresh(2));
    TokenPool b = group.add(PoolSettings.evicting("b", TTL), fresh(2));
    assertThat(a.activate(user(1)).lease().generation()).isEqualTo(1);
    assertThat(b.activate(user(1)).lease().generation()).isEqualTo(2);
    assertThat(a.activate(user(2)).lease().generation()).isEqualTo(3);
    assertThat(group.drainChanges()).extracting(PoolChange::pool).containsExactly("a", "b", "a");
    assertThat(group.pools()).extracting(TokenPool::name).containsExactly("a", "b");
    assertThatThrownBy(() -> group.add(PoolSettings.evicting("a", TTL), fresh(1)))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  @DisplayName("one undo takes back the changes of every pool that followed the mark")
  void undoAcrossPools() {
    TokenPool a = group.add(PoolSettings.evicting("a", TTL), fresh(1));
    TokenPool b = group.add(PoolSettings.evicting("b", TTL), fresh(1));
    a.activate(user(1));
    long mark = group.undoMark();
    a.release(a.list(TokenState.ACTIVE).get(0).tokenId(), user(1), null);
    b.activate(user(2));
    group.undoTo(mark);
    assertThat(a.activeCount()).isEqualTo(1);
    assertThat(b.activeCount()).isZero();
    // The number handed out and taken back is not handed out again.
    assertThat(b.activate(user(3)).lease().generation()).isEqualTo(3);
  }

  @Test
  @DisplayName("waiters are granted first come first served, and a newcomer queues behind them")
  void waitersAreFair() {
    TokenPool pool = waiting("w", 1, Duration.ofSeconds(10));
    TokenView held = pool.activate(user(1)).lease();
    Object first = new Object();
    Object second = new Object();
    assertThat(pool.activate(user(2), null, first, 10 * SECOND)).isNull();
    assertThat(pool.activate(user(3), null, second, 10 * SECOND)).isNull();
    assertThat(group.waiterCount()).isEqualTo(2);
    pool.release(held.tokenId(), user(1), null);
    // Freed, but nobody is granted until the owner serves the waiters; a newcomer still queues.
    Object third = new Object();
    assertThat(pool.activate(user(4), null, third, 10 * SECOND)).isNull();
    pool.serveWaiters();
    List<WaitOutcome> outcomes = group.drainOutcomes();
    assertThat(outcomes).hasSize(1);
    assertThat(outcomes.get(0).handle()).isSameAs(first);
    assertThat(outcomes.get(0).grant().lease().currentUserId()).isEqualTo(user(2));
    pool.release(held.tokenId(), user(2), null);
    pool.serveWaiters();
    assertThat(group.drainOutcomes()).extracting(WaitOutcome::handle).containsExactly(second);
    assertThat(pool.waiterCount()).isEqualTo(1);
  }

  @Test
  @DisplayName("a wait runs out at the shorter of the caller's wait and max_wait, refused as a full pool is")
  void waitTimesOut() {
    TokenPool pool = waiting("w", 1, Duration.ofSeconds(5));
    pool.activate(user(1));
    Object patient = new Object();
    Object hasty = new Object();
    pool.activate(user(2), null, patient, 30 * SECOND);
    pool.activate(user(3), null, hasty, 2 * SECOND);
    time.advance(Duration.ofSeconds(2));
    group.expireWaits();
    List<WaitOutcome> out = group.drainOutcomes();
    assertThat(out).extracting(WaitOutcome::handle).containsExactly(hasty);
    ApiException refusal = out.get(0).refusal();
    assertThat(refusal.error()).isEqualTo(ErrorCode.CONFLICT);
    assertThat(refusal.getMessage()).isEqualTo("No token available in pool w.");
    assertThat(refusal.retryAfterSeconds()).isEqualTo(58);
    assertThat(out.get(0).waitedMillis()).isEqualTo(2000);
    time.advance(Duration.ofSeconds(3));
    group.expireWaits();
    assertThat(group.drainOutcomes()).extracting(WaitOutcome::handle).containsExactly(patient);
    assertThat(pool.timedOutCount()).isEqualTo(2);
    assertThat(group.waiterCount()).isZero();
  }

  @Test
  @DisplayName("a cancelled waiter is never granted; a caller that does not wait is refused at once")
  void cancelledWaiter() {
    TokenPool pool = waiting("w", 1, Duration.ofSeconds(5));
    TokenView held = pool.activate(user(1)).lease();
    Object gone = new Object();
    pool.activate(user(2), null, gone, 5 * SECOND);
    assertThat(pool.cancelWait(gone)).isTrue();
    assertThat(pool.cancelWait(gone)).isFalse();
    pool.release(held.tokenId(), user(1), null);
    pool.serveWaiters();
    assertThat(group.drainOutcomes()).isEmpty();
    assertThat(pool.availableCount()).isEqualTo(1);
    pool.activate(user(3));
    assertThatThrownBy(() -> pool.activate(user(4)))
        .hasMessage("No token available in pool w.");
    assertThat(pool.rejectedCount()).isEqualTo(1);
  }

  @Test
  @DisplayName("waiters are bounded over all pools: beyond the bound, 503")
  void waitersBounded() {
    TokenPool a = waiting("a", 1, Duration.ofSeconds(5));
    TokenPool b = waiting("b", 1, Duration.ofSeconds(5));
    a.activate(user(1));
    b.activate(user(1));
    a.activate(user(2), null, new Object(), SECOND);
    a.activate(user(3), null, new Object(), SECOND);
    b.activate(user(4), null, new Object(), SECOND);
    assertThatThrownBy(() -> b.activate(user(5), null, new Object(), SECOND))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.error()).isEqualTo(ErrorCode.UNAVAILABLE));
  }

  @Test
  @DisplayName("a pool that stops waiting refuses its waiters; a waiter over its user's limit is refused when served")
  void settingsChangeAndLimitWhileWaiting() {
    TokenPool pool = group.add(new PoolSettings("w", TTL, Overflow.WAIT, Duration.ofSeconds(5), null, 2), fresh(2));
    TokenView first = pool.activate(user(1)).lease();
    pool.activate(user(2));
    Object sameUser = new Object();
    Object other = new Object();
    pool.activate(user(1), null, sameUser, SECOND);
    pool.activate(user(4), null, other, SECOND);
    // The limit is lowered while user 1 waits for its second token.
    pool.settings(new PoolSettings("w", TTL, Overflow.WAIT, Duration.ofSeconds(5), null, 1));
    pool.release(first.tokenId(), user(1), null);
    pool.activate(user(1), null, new Object(), SECOND);
    TokenView second = pool.list(TokenState.ACTIVE).stream().filter(v -> v.currentUserId().equals(user(2)))
        .findFirst().orElseThrow();
    pool.release(second.tokenId(), user(2), null);
    pool.serveWaiters();
    List<WaitOutcome> out = group.drainOutcomes();
    assertThat(out).extracting(WaitOutcome::handle).containsExactly(sameUser, other);
    assertThat(out.get(0).grant().lease().currentUserId()).isEqualTo(user(1));
    TokenView fourth = out.get(1).grant().lease();
    assertThat(fourth.currentUserId()).isEqualTo(user(4));
    // The third waiter, user 1 again, now holds one and is refused as soon as it is served.
    pool.release(fourth.tokenId(), user(4), null);
    pool.serveWaiters();
    assertThat(group.drainOutcomes()).singleElement()
        .satisfies(o -> assertThat(o.refusal()).hasMessage("User already holds 1 tokens in pool w."));

    pool.activate(user(6));
    Object last = new Object();
    assertThat(pool.activate(user(5), null, last, SECOND)).isNull();
    pool.settings(new PoolSettings("w", TTL, Overflow.REJECT, null, null, 1));
    assertThat(group.drainOutcomes()).singleElement().satisfies(o -> {
      assertThat(o.handle()).isSameAs(last);
      assertThat(o.refusal()).hasMessage("No token available in pool w.");
    });
  }

  @Test
  @DisplayName("max_hold caps renewals at the grant plus max_hold, then refuses them")
  void maxHold() {
    TokenPool pool = group.add(new PoolSettings("h", TTL, Overflow.REJECT, null, Duration.ofSeconds(90), 0), fresh(1));
    TokenView lease = pool.activate(user(1)).lease();
    time.advance(Duration.ofSeconds(20));
    TokenView renewed = pool.renew(lease.tokenId(), user(1), null);
    assertThat(renewed.expiresAt()).isEqualTo(T0.plusSeconds(80));
    time.advance(Duration.ofSeconds(20));
    renewed = pool.renew(lease.tokenId(), user(1), null);
    assertThat(renewed.expiresAt()).isEqualTo(T0.plusSeconds(90));
    assertThatThrownBy(() -> pool.renew(lease.tokenId(), user(1), null))
        .hasMessage("Lease reached its maximum hold time.");
    time.advance(Duration.ofSeconds(50));
    assertThat(pool.get(lease.tokenId()).state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(pool.drainChanges()).last().satisfies(c -> {
      assertThat(c.endReason()).isEqualTo(EndReason.EXPIRED);
      assertThat(c.endedAtMillis()).isEqualTo(T0.plusSeconds(90).toEpochMilli());
    });
  }

  @Test
  @DisplayName("a capped lease expires before longer ones granted earlier (expiry follows deadlines, not grant order)")
  void expiryFollowsDeadlines() {
    TokenPool pool = group.add(new PoolSettings("h", TTL, Overflow.EVICT_OLDEST, null, Duration.ofSeconds(70), 0),
        fresh(2));
    TokenView a = pool.activate(user(1)).lease();
    time.advance(Duration.ofSeconds(30));
    TokenView b = pool.activate(user(2)).lease();
    time.advance(Duration.ofSeconds(29));
    pool.renew(a.tokenId(), user(1), null); // capped at T0+70, before b's T0+90
    pool.renew(b.tokenId(), user(2), null); // T0+119
    time.advance(Duration.ofSeconds(12)); // T0+71
    pool.expireDue();
    assertThat(pool.get(a.tokenId()).state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(pool.get(b.tokenId()).state()).isEqualTo(TokenState.ACTIVE);
    // The full pool evicts the lease due to end first.
    pool.activate(user(3));
    assertThat(pool.activate(user(4)).evicted()).isNotNull();
  }

  @Test
  @DisplayName("revoke ends the lease now; its holder is told it was revoked")
  void revoke() {
    TokenPool pool = group.add(PoolSettings.evicting("r", TTL), fresh(1));
    TokenView lease = pool.activate(user(1)).lease();
    TokenView after = pool.revoke(lease.tokenId());
    assertThat(after.state()).isEqualTo(TokenState.AVAILABLE);
    assertThat(after.generation()).isEqualTo(lease.generation());
    assertThat(pool.drainChanges()).last().satisfies(c -> {
      assertThat(c.endReason()).isEqualTo(EndReason.REVOKED);
      assertThat(c.tokenNoticeRevoked()).isTrue();
      assertThat(c.tokenEvictedUserId()).isEqualTo(user(1));
    });
    assertThatThrownBy(() -> pool.release(lease.tokenId(), user(1), null)).hasMessage("Token was revoked.");
    assertThatThrownBy(() -> pool.renew(lease.tokenId(), user(1), lease.generation())).hasMessage("Token was revoked.");
    assertThatThrownBy(() -> pool.revoke(lease.tokenId())).hasMessage("Token is not active.");
    assertThatThrownBy(() -> pool.release(lease.tokenId(), user(2), null)).hasMessage("Token is not active.");
  }

  @Test
  @DisplayName("an undone revocation puts the lease and the token's old notice back")
  void undoRevoke() {
    TokenPool pool = group.add(PoolSettings.evicting("r", TTL), fresh(1));
    TokenView lease = pool.activate(user(1)).lease();
    long mark = group.undoMark();
    pool.revoke(lease.tokenId());
    group.undoTo(mark);
    assertThat(pool.get(lease.tokenId()).currentUserId()).isEqualTo(user(1));
    assertThat(pool.release(lease.tokenId(), user(1), null).state()).isEqualTo(TokenState.AVAILABLE);
  }

  @Test
  @DisplayName("a pool grows: the new tokens are free at once, handed out first and listed in creation order")
  void grow() {
    TokenPool pool = waiting("g", 1, Duration.ofSeconds(5));
    TokenView held = pool.activate(user(1)).lease();
    Object waiter = new Object();
    pool.activate(user(2), null, waiter, SECOND);
    UUID added = new UUID(9, 1);
    pool.addTokens(List.of(PoolSnapshot.StoredToken.fresh(added, 2)));
    assertThat(pool.size()).isEqualTo(2);
    pool.serveWaiters();
    assertThat(group.drainOutcomes()).singleElement().satisfies(o -> assertThat(o.grant().lease().tokenId()).isEqualTo(added));
    assertThat(pool.list(null)).extracting(TokenView::tokenId).containsExactly(held.tokenId(), added);
  }

  @Test
  @DisplayName("a removed pool refuses its waiters; one with leases cannot be removed")
  void remove() {
    TokenPool pool = waiting("x", 1, Duration.ofSeconds(5));
    TokenView held = pool.activate(user(1)).lease();
    Object waiter = new Object();
    pool.activate(user(2), null, waiter, SECOND);
    ApiException gone = new ApiException(ErrorCode.NOT_FOUND, "Pool not found");
    assertThatThrownBy(() -> group.remove(pool, gone)).isInstanceOf(IllegalStateException.class);
    pool.clear();
    group.remove(pool, gone);
    assertThat(group.get("x")).isNull();
    assertThat(group.drainOutcomes()).singleElement().satisfies(o -> assertThat(o.refusal()).isSameAs(gone));
    assertThat(group.waiterCount()).isZero();
    assertThat(held).isNotNull();
  }
}
