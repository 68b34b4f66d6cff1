package dev.tokenlease.lease.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The pool checked against a model of what it should do, over random sequences of operations,
 * clock moves (monotonic time, and wall-clock steps that must not change when leases end) and
 * undo.
 *
 * <p>The model restates the rules as plainly as it can (linear scans, no queues): every operation
 * first ends the leases whose deadline has come, each at its own expiry instant and in deadline
 * order; activation takes the token freed longest ago (never-used ones first, in creation order),
 * evicting the least recently granted or renewed lease when none is free, and naming it in the
 * answer with how long it was held. Refusals are compared with their messages; the holder of a
 * token's last evicted lease is told it was evicted, unless it leased that token again since (the
 * model reads both from each token's list of usages). Activations may carry an Idempotency-Key
 * (one of a few, so that they repeat): a key is known from its grant until one TTL later, and for
 * as long as its lease lives; a known key answers its lease to the same user while it lives, 409
 * after it ended and 422 to anyone else, and changes nothing. (The pool's cap on waiting keys is
 * far beyond what a run reaches.) The one free choice of the pool, a new grant's generation, is
 * taken from its answer and checked separately.
 *
 * <p>Undo: the pool is undoable. A mark saves the pool's undo mark with a deep copy of the model
 * and of the change log; undoing to it restores both, so undone grants and ends leave the log too.
 * Generations are the exception: undo takes none back, so every grant, kept or undone, must get a
 * higher one than any before. After every undo the pool must agree with the model again on every
 * token and on the next token it hands out. Forgetting history before a mark makes undoing to an
 * earlier mark fail.
 *
 * <p>Runs: 200 runs of 100 steps on a pool of 1 to 4 tokens, run {@code i} seeded with the
 * {@code i}-th number drawn from {@link #BASE_SEED}. Each step is drawn from the model's state and
 * then applied. A failure reports the run's seed, the steps it ran and the shortest failing list
 * found by dropping steps. To replay one run:
 *
 * <pre>mvn -B test -Dtest=TokenPoolModelTest -Dpool.model.seed=SEED</pre>
 *
 * To explore other sequences, change {@link #BASE_SEED}.
 */
@DisplayName("Token pool against its model")
class TokenPoolModelTest {
  private static final Duration TTL = Duration.ofSeconds(10);
  private static final Instant T0 = Instant.parse("2025-12-19T15:12:02Z");
  private static final int MAX_TOKENS = 4;
  private static final int USERS = 3;
  private static final UUID UNKNOWN_TOKEN = new UUID(0, 999);
  private static final long BASE_SEED = 8270413L;
  private static final int RUNS = 200;
  private static final int STEPS_PER_RUN = 100;
  private static final String SEED_PROPERTY = "pool.model.seed";

  @TestFactory
  @DisplayName("agrees with the model on every answer, holder and change, whatever the order of operations and undos")
  Stream<DynamicTest> poolFollowsModel() {
    Long replay = Long.getLong(SEED_PROPERTY);
    if (replay != null) {
      return Stream.of(dynamicTest("seed " + replay, () -> check(replay)));
    }
    long[] seeds = new SplittableRandom(BASE_SEED).longs(RUNS).toArray();
    return IntStream.range(0, RUNS)
        .mapToObj(i -> dynamicTest("run " + i + ", seed " + seeds[i], () -> check(seeds[i])));
  }

  private static void check(long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int size = 1 + random.nextInt(MAX_TOKENS);
    Run run = new Run(size);
    List<Step> steps = new ArrayList<>();
    try {
      while (steps.size() < STEPS_PER_RUN) {
        Step step = draw(run, random);
        steps.add(step);
        run.apply(step);
      }
    } catch (AssertionError | RuntimeException error) {
      Failure shortest = shrink(size, new Failure(steps, error));
      throw new AssertionError("seed " + seed + ", pool of " + size + ", failed at step " + steps.size() + ": "
          + error.getMessage()
          + "\nReplay: mvn -B test -Dtest=TokenPoolModelTest -D" + SEED_PROPERTY + "=" + seed
          + "\nState at the failure: " + run
          + "\nSteps run:" + numbered(steps)
          + "\nShortest failing list found by dropping steps (" + shortest.steps().size() + " steps):"
          + numbered(shortest.steps())
          + "\nwhich fails with: " + shortest.error().getMessage(), error);
    }
  }

  /** A list of steps that fails, ending with the step that failed. */
  private record Failure(List<Step> steps, Throwable error) {}

  /**
   * Drops runs of consecutive steps, as long as the pool down to single steps, keeping each drop
   * after which the rest still fails on a fresh pool, until no drop does. Runs as long as the pool
   * because dropping a whole turn of activations leaves every token where it was in the queues,
   * where dropping one moves them all. Any failure will do; it may change on the way.
   */
  private static Failure shrink(int size, Failure failure) {
    Failure shortest = failure;
    boolean dropped = true;
    while (dropped) {
      dropped = false;
      for (int length = size; length >= 1; length--) {
        for (int from = shortest.steps().size() - length; from >= 0; from--) {
          List<Step> fewer = new ArrayList<>(shortest.steps());
          fewer.subList(from, from + length).clear();
          Failure still = replay(size, fewer);
          if (still != null) {
            shortest = still;
            dropped = true;
            // The new list may end earlier: it stops at its own failing step.
            from = Math.min(from, shortest.steps().size() - length + 1);
          }
        }
      }
    }
    return shortest;
  }

  /** Runs the steps on a fresh pool; returns the failure, or null if every step passes. */
  private static Failure replay(int size, List<Step> steps) {
    Run run = new Run(size);
    for (int i = 0; i < steps.size(); i++) {
      try {
        run.apply(steps.get(i));
      } catch (AssertionError | RuntimeException error) {
        return new Failure(List.copyOf(steps.subList(0, i + 1)), error);
      }
    }
    return null;
  }

  private static String numbered(List<Step> steps) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < steps.size(); i++) {
      out.append(String.format("%n%5d. %s", i + 1, steps.get(i)));
    }
    return out.toString();
  }

  /** One step with its values drawn, described in words for the failure report. */
  record Step(String description, Consumer<Run> effect) {
    @Override
    public String toString() {
      return description;
    }
  }

  /** A kind of step: how often it is drawn, in which states it can be, and how its values are drawn. */
  private record StepKind(int weight, Predicate<Run> possible, BiFunction<Run, SplittableRandom, Step> draw) {}

  private static final Predicate<Run> ALWAYS = run -> true;
  private static final Predicate<Run> SOME_LEASE = run -> !run.model.leases().isEmpty();
  private static final Predicate<Run> SOME_MARK = run -> !run.points.isEmpty();

  private static final List<StepKind> KINDS = List.of(
      new StepKind(5, ALWAYS, (run, random) -> activate(user(random), key(random))),
      new StepKind(4, SOME_LEASE, TokenPoolModelTest::actOnHeldToken),
      new StepKind(2, ALWAYS, (run, random) -> actOnAnyToken(random)),
      new StepKind(1, ALWAYS, (run, random) -> list(random)),
      new StepKind(1, ALWAYS, (run, random) -> new Step("clear", Run::clear)),
      new StepKind(1, ALWAYS, (run, random) -> new Step("expire due", Run::expireDue)),
      new StepKind(4, ALWAYS, (run, random) -> advance(random)),
      new StepKind(1, ALWAYS, (run, random) -> stepWall(random)),
      new StepKind(2, ALWAYS, (run, random) -> mark(run)),
      new StepKind(1, SOME_MARK, TokenPoolModelTest::undoTo),
      new StepKind(1, SOME_MARK, TokenPoolModelTest::forgetBefore),
      new StepKind(1, ALWAYS, (run, random) -> refusedActivate(user(random), key(random))));

  private static Step draw(Run run, SplittableRandom random) {
    List<StepKind> possible = KINDS.stream().filter(kind -> kind.possible().test(run)).toList();
    int roll = random.nextInt(possible.stream().mapToInt(StepKind::weight).sum());
    for (StepKind kind : possible) {
      roll -= kind.weight();
      if (roll < 0) {
        return kind.draw().apply(run, random);
      }
    }
    throw new IllegalStateException("the roll is below the sum of the weights");
  }

  private static Step activate(UUID user, String key) {
    return new Step("activate by " + label(user) + keyLabel(key), run -> run.activate(user, key));
  }

  private static Step list(SplittableRandom random) {
    TokenState state = random.nextInt(100) < 34 ? null : oneOf(random, TokenState.values());
    return new Step("list " + (state == null ? "all" : state.wireName()), run -> run.list(state));
  }

  /** Release, renew or get on any token, in the pool or not, by any user, with any generation. */
  private static Step actOnAnyToken(SplittableRandom random) {
    List<UUID> tokens = new ArrayList<>(tokenIds(MAX_TOKENS));
    tokens.add(UNKNOWN_TOKEN);
    UUID token = tokens.get(random.nextInt(tokens.size()));
    UUID user = user(random);
    Long generation = random.nextInt(10) < 3 ? null : random.nextLong(31);
    return switch (random.nextInt(3)) {
      case 0 -> release(token, user, generation);
      case 1 -> renew(token, user, generation);
      default -> new Step("get " + label(token), run -> run.get(token));
    };
  }

  /**
   * Release or renew of a lease the model knows, mostly by its holder, with right, stale or no
   * generation. Holder and generation are named relative to the lease, so that the step keeps its
   * meaning in a shortened list, where grants and generations differ.
   */
  private static Step actOnHeldToken(Run run, SplittableRandom random) {
    List<ModelToken> held = run.model.leases();
    UUID token = held.get(random.nextInt(held.size())).id;
    UUID user = random.nextInt(4) < 3 ? null : user(random);
    Integer offset = random.nextInt(5) == 0 ? null : switch (random.nextInt(5)) {
      case 0 -> -1;
      case 1 -> 1;
      default -> 0;
    };
    boolean releasing = random.nextBoolean();
    String generation = offset == null ? "no generation"
        : "its generation" + (offset == 0 ? "" : offset > 0 ? " + 1" : " - 1");
    return new Step((releasing ? "release " : "renew ") + label(token) + " by "
        + (user == null ? "its holder" : label(user)) + ", " + generation,
        r -> r.actOnHeld(token, user, offset, releasing));
  }

  private static Step release(UUID token, UUID user, Long generation) {
    return new Step("release " + label(token) + " by " + label(user) + " gen " + generation,
        run -> run.release(token, user, generation));
  }

  private static Step renew(UUID token, UUID user, Long generation) {
    return new Step("renew " + label(token) + " by " + label(user) + " gen " + generation,
        run -> run.renew(token, user, generation));
  }

  /** Time passes: nothing, a millisecond, a whole TTL and either side of it, or anything up to two TTLs. */
  private static Step advance(SplittableRandom random) {
    long ttl = TTL.toMillis();
    long millis = random.nextInt(4) == 0
        ? oneOf(random, new Long[] {0L, 1L, ttl - 1, ttl, ttl + 1})
        : random.nextLong(2 * ttl + 1);
    return new Step("advance " + millis + " ms", run -> run.advance(Duration.ofMillis(millis)));
  }

  /** The wall clock is set back or forth by up to three hours, as NTP might; monotonic time stays. */
  private static Step stepWall(SplittableRandom random) {
    long seconds = random.nextLong(-3 * 3600, 3 * 3600 + 1);
    return new Step("step wall clock " + seconds + " s", run -> run.stepWall(Duration.ofSeconds(seconds)));
  }

  private static Step mark(Run run) {
    int label = run.marksTaken + 1;
    return new Step("mark " + label, r -> r.mark(label));
  }

  private static Step undoTo(Run run, SplittableRandom random) {
    int label = run.points.get(random.nextInt(run.points.size())).label();
    return new Step("undo to mark " + label, r -> r.undoTo(label));
  }

  private static Step forgetBefore(Run run, SplittableRandom random) {
    int label = run.points.get(random.nextInt(run.points.size())).label();
    return new Step("forget history before mark " + label, r -> r.forgetBefore(label));
  }

  private static Step refusedActivate(UUID user, String key) {
    return new Step("activate by " + label(user) + keyLabel(key) + ", refused by the database: undone",
        run -> run.refusedActivate(user, key));
  }

  /** No key half the time, else one of three, so that keys come back within a TTL and after. */
  private static String key(SplittableRandom random) {
    return random.nextBoolean() ? null : "key-" + (1 + random.nextInt(3));
  }

  private static String keyLabel(String key) {
    return key == null ? "" : " with Idempotency-Key " + key;
  }

  private static UUID user(SplittableRandom random) {
    return new UUID(1, 1 + random.nextInt(USERS));
  }

  private static <T> T oneOf(SplittableRandom random, T[] values) {
    return values[random.nextInt(values.length)];
  }

  private static List<UUID> tokenIds(int size) {
    List<UUID> ids = new ArrayList<>();
    for (int i = 1; i <= size; i++) {
      ids.add(new UUID(0, i));
    }
    return ids;
  }

  private static String label(UUID id) {
    return (id.getMostSignificantBits() == 0 ? "token " : "user ") + id.getLeastSignificantBits();
  }

  /** Where the pool's history stood at a mark, with what the model and the log were then. */
  record SavedPoint(int label, long mark, Model model, ChangeLog log) {}

  /** One run's pool, its clocks, the model, the log of the changes the pool reported, and its undo marks. */
  static final class Run {
    final ManualTime time = new ManualTime(T0);
    final TokenPool pool;
    Model model;
    ChangeLog log = new ChangeLog();
    /** The marks on the current history, oldest first; an undo drops those taken after its mark. */
    final List<SavedPoint> points = new ArrayList<>();
    /** Names the next mark drawn. */
    int marksTaken;
    /** Undoing to a mark below this one must fail: the steps before it are forgotten. */
    long forgottenBefore;
    /** The highest generation handed out, undone or not: undo takes no generation back. */
    long lastGeneration;

    Run(int size) {
      List<PoolSnapshot.StoredToken> tokens = new ArrayList<>();
      int seq = 1;
      for (UUID id : tokenIds(size)) {
        tokens.add(new PoolSnapshot.StoredToken(id, seq++, PoolChange.NO_TIME, PoolChange.NO_TIME, 0, null, 0));
      }
      pool = new TokenPool(new PoolSnapshot(tokens, List.of(), 0, PoolChange.NO_TIME), TTL, time, time::nanoTime, true);
      model = new Model(tokenIds(size));
    }

    void apply(Step step) {
      step.effect().accept(this);
      checkInvariants();
    }

    void activate(UUID user, String key) {
      Outcome actual = Outcome.of(() -> pool.activate(user, key));
      settle("activate", actual, model.activate(user, key, generationOf(actual), time.millis(), time.nanoTime()));
    }

    void release(UUID token, UUID user, Long generation) {
      settle("release", Outcome.of(() -> pool.release(token, user, generation)),
          model.release(token, user, generation, time.millis(), time.nanoTime()));
    }

    void renew(UUID token, UUID user, Long generation) {
      settle("renew", Outcome.of(() -> pool.renew(token, user, generation)),
          model.renew(token, user, generation, time.millis(), time.nanoTime()));
    }

    /**
     * @param user null for the lease's holder
     * @param offset added to the lease's generation; null for none
     */
    void actOnHeld(UUID token, UUID user, Integer offset, boolean releasing) {
      ModelLease lease = model.lease(token);
      if (lease == null) {
        // Only in a shortened list: the grant this step acted on was dropped.
        return;
      }
      UUID who = user == null ? lease.user() : user;
      Long generation = offset == null ? null : lease.generation() + offset;
      if (releasing) {
        release(token, who, generation);
      } else {
        renew(token, who, generation);
      }
    }

    void get(UUID token) {
      settle("get", Outcome.of(() -> pool.get(token)), model.get(token, time.nanoTime()));
    }

    void list(TokenState state) {
      settle("list", Outcome.of(() -> pool.list(state)), model.list(state, time.nanoTime()));
    }

    void clear() {
      settle("clear", Outcome.of(pool::clear), model.clear(time.millis(), time.nanoTime()));
    }

    void expireDue() {
      Outcome actual = Outcome.ok(pool.expireDue());
      model.expireDue(time.nanoTime());
      settle("expire due", actual, Outcome.ok(time.nanoTime()));
    }

    void advance(Duration duration) {
      time.advance(duration);
    }

    void stepWall(Duration step) {
      time.stepWall(step);
    }

    void mark(int label) {
      marksTaken++;
      points.add(new SavedPoint(label, pool.undoMark(), model.copy(), log.copy()));
    }

    /**
     * Undoes to a mark, or sees the undo refused when history before it is forgotten, then checks
     * that pool and model agree. The saved copies are copied again, so a mark can be undone to
     * more than once.
     */
    void undoTo(int label) {
      SavedPoint point = point(label);
      if (point == null) {
        return;
      }
      if (point.mark() < forgottenBefore) {
        assertThatThrownBy(() -> pool.undoTo(point.mark()))
            .as("undo to mark %d, before the history forgotten at %d", point.mark(), forgottenBefore)
            .isInstanceOf(IllegalStateException.class);
      } else {
        pool.undoTo(point.mark());
        model = point.model().copy();
        log = point.log().copy();
        // Marks taken after this one named steps that no longer exist.
        points.subList(points.indexOf(point) + 1, points.size()).clear();
      }
      // Counts are compared after every step (checkInvariants); here the tokens, and the next grant to anyone.
      list(null);
      refusedActivate(new UUID(1, 1), null);
    }

    void forgetBefore(int label) {
      SavedPoint point = point(label);
      if (point == null) {
        return;
      }
      pool.forgetBefore(point.mark());
      forgottenBefore = Math.max(forgottenBefore, point.mark());
    }

    /** The live mark with this label; none only in a shortened list, where its mark was dropped or undone. */
    private SavedPoint point(int label) {
      return points.stream().filter(p -> p.label() == label).findFirst().orElse(null);
    }

    /**
     * An activation whose write the database refuses, undone before its changes are drained (they
     * must vanish with it): the pool must hand out the token the model would, under a new
     * generation, and then be as before.
     */
    void refusedActivate(UUID user, String key) {
      long mark = pool.undoMark();
      Outcome actual = Outcome.of(() -> pool.activate(user, key));
      pool.undoTo(mark);
      long generation = generationOf(actual);
      assertThat(actual).as("answer to an activation then undone")
          .isEqualTo(model.copy().activate(user, key, generation, time.millis(), time.nanoTime()));
      if (actual.value() instanceof Grant grant && !grant.repeated()) {
        granted(generation);
      }
      assertThat(pool.drainChanges()).as("changes of an undone activation").isEmpty();
    }

    private static long generationOf(Outcome outcome) {
      return outcome.value() instanceof Grant grant ? grant.lease().generation() : -1;
    }

    /** Generations only go up, across undo too: one handed out before an undo is never handed out again. */
    private void granted(long generation) {
      assertThat(generation).as("granted generation").isGreaterThan(lastGeneration);
      lastGeneration = generation;
    }

    /** Compares answer and changes with the model's, then checks what every view and change must satisfy. */
    private void settle(String operation, Outcome actual, Outcome expected) {
      assertThat(actual).as("answer to %s", operation).isEqualTo(expected);
      List<PoolChange> changes = pool.drainChanges();
      assertThat(changes).as("changes after %s", operation).containsExactlyElementsOf(model.drainChanges());
      log.record(changes, time.nanoTime());
      changes.stream().filter(c -> c.kind() == PoolChange.Kind.GRANTED).forEach(c -> granted(c.generation()));
      if (actual.value() instanceof Grant grant) {
        log.checkView(grant.lease(), time.nanoTime());
      } else if (actual.value() instanceof TokenView view) {
        log.checkView(view, time.nanoTime());
      } else if (actual.value() instanceof List<?> views) {
        views.forEach(view -> log.checkView((TokenView) view, time.nanoTime()));
        assertThat(views).extracting(view -> ((TokenView) view).tokenId()).doesNotHaveDuplicates();
      }
    }

    /** Shown in the failure report. */
    @Override
    public String toString() {
      return "pool of " + pool.size() + " at wall " + time.instant() + ", leases in the model: "
          + model.leases().stream().map(t -> label(t.id) + " by " + label(t.lease.user()) + " gen "
              + t.lease.generation() + " until " + Instant.ofEpochMilli(t.lease.expiresAt())).toList()
          + ", marks: " + points.stream().map(p -> p.label() + " at " + p.mark()).toList()
          + ", history forgotten before " + forgottenBefore;
    }

    /** Checked after every step with accessors that change nothing (no lazy expiry). */
    void checkInvariants() {
      assertThat(pool.activeCount() + pool.availableCount()).as("active + available").isEqualTo(pool.size());
      assertThat(pool.activeCount()).as("active leases").isEqualTo(model.leases().size()).isEqualTo(log.held.size());
      assertThat(pool.lastGeneration()).as("last generation").isEqualTo(lastGeneration);
      assertThat(log.grants).as("grants in the change log").isEqualTo(model.usageTotal());
    }
  }

  /** An operation's answer: a value, or the error and message the pool refused it with. */
  record Outcome(Object value, ErrorCode error, String message) {
    static Outcome of(Supplier<?> operation) {
      try {
        return ok(operation.get());
      } catch (ApiException e) {
        return new Outcome(null, e.error(), e.getMessage());
      }
    }

    static Outcome ok(Object value) {
      return new Outcome(value, null, null);
    }

    static Outcome refused(ErrorCode error, String message) {
      return new Outcome(null, error, message);
    }
  }

  /** What the pool should do. Times: wall-clock epoch millis and monotonic nanos, as the pool keeps them. */
  static final class Model {
    private final long ttlMillis = TTL.toMillis();
    private final long ttlNanos = TTL.toNanos();
    private final Map<UUID, ModelToken> tokens = new LinkedHashMap<>();
    private final List<PoolChange> changes = new ArrayList<>();
    /** Every grant made under an Idempotency-Key, oldest first. */
    private final List<KeyedGrant> keyedGrants = new ArrayList<>();
    /** Orders grants, renewals and endings, for "least recently" and "longest ago". */
    private long clock;

    Model(List<UUID> ids) {
      for (UUID id : ids) {
        // Never used: free since before any event, in creation order.
        tokens.put(id, new ModelToken(id, tokens.size() - ids.size()));
      }
    }

    /** A deep copy, for an undo mark. */
    Model copy() {
      Model copy = new Model(List.of());
      tokens.values().forEach(token -> copy.tokens.put(token.id, token.copy()));
      copy.changes.addAll(changes);
      copy.keyedGrants.addAll(keyedGrants);
      copy.clock = clock;
      return copy;
    }

    Outcome activate(UUID user, String key, long generation, long nowMillis, long nowNanos) {
      expireDue(nowNanos);
      KeyedGrant known = key == null ? null : known(key, nowNanos);
      if (known != null) {
        ModelLease lease = tokens.get(known.tokenId()).lease;
        if (!known.user().equals(user)) {
          return Outcome.refused(ErrorCode.UNPROCESSABLE, "Idempotency-Key was used by another user.");
        }
        if (lease == null || lease.generation() != known.generation()) {
          return Outcome.refused(ErrorCode.CONFLICT, "The lease for this Idempotency-Key has ended.");
        }
        return Outcome.ok(new Grant(tokens.get(known.tokenId()).view(), known.evicted(), true));
      }
      Grant.Evicted evicted = null;
      if (tokens.values().stream().allMatch(t -> t.lease != null)) {
        ModelToken oldest = leases().stream().min(Comparator.comparingLong(t -> t.lease.touched())).orElseThrow();
        evicted = new Grant.Evicted(oldest.id, oldest.lease.user(), oldest.lease.generation(),
            Math.max(0, (nowNanos - oldest.lease.startedNanos()) / 1_000_000));
        end(oldest, EndReason.EVICTED, nowMillis);
      }
      ModelToken token = tokens.values().stream().filter(t -> t.lease == null)
          .min(Comparator.comparingLong(t -> t.freed)).orElseThrow();
      token.lease = new ModelLease(user, generation, nowMillis, nowNanos, nowMillis + ttlMillis, nowNanos + ttlNanos,
          ++clock, key, evicted == null ? 0 : evicted.generation());
      token.activatedAt = nowMillis;
      token.releasedAt = PoolChange.NO_TIME;
      token.usage++;
      token.usages.add(new ModelUsage(user, generation, null));
      if (key != null) {
        keyedGrants.add(new KeyedGrant(key, user, token.id, generation, nowNanos, evicted));
      }
      changes.add(change(PoolChange.Kind.GRANTED, token, token.lease, PoolChange.NO_TIME, null));
      return Outcome.ok(new Grant(token.view(), evicted, false));
    }

    /** The grant a key is known by: granted less than one TTL ago, or with its lease still open. */
    private KeyedGrant known(String key, long nowNanos) {
      for (int i = keyedGrants.size() - 1; i >= 0; i--) {
        KeyedGrant grant = keyedGrants.get(i);
        ModelLease lease = tokens.get(grant.tokenId()).lease;
        boolean open = lease != null && lease.generation() == grant.generation();
        if (grant.key().equals(key) && (open || nowNanos - (grant.grantedNanos() + ttlNanos) < 0)) {
          return grant;
        }
      }
      return null;
    }

    Outcome release(UUID id, UUID user, Long generation, long nowMillis, long nowNanos) {
      expireDue(nowNanos);
      Outcome refusal = refusal(id, user, generation);
      if (refusal != null) {
        return refusal;
      }
      ModelToken token = tokens.get(id);
      long ended = token.lease.generation();
      end(token, EndReason.RELEASED, nowMillis);
      return Outcome.ok(new TokenView(id, TokenState.AVAILABLE, null, instant(token.activatedAt),
          instant(token.releasedAt), token.usage, ended, null));
    }

    Outcome renew(UUID id, UUID user, Long generation, long nowMillis, long nowNanos) {
      expireDue(nowNanos);
      Outcome refusal = refusal(id, user, generation);
      if (refusal != null) {
        return refusal;
      }
      ModelToken token = tokens.get(id);
      ModelLease old = token.lease;
      token.lease = new ModelLease(old.user(), old.generation(), old.startedAt(), old.startedNanos(),
          nowMillis + ttlMillis, nowNanos + ttlNanos, ++clock, old.key(), old.evictedGeneration());
      changes.add(change(PoolChange.Kind.RENEWED, token, token.lease, PoolChange.NO_TIME, null));
      return Outcome.ok(token.view());
    }

    /** Why the caller may not release or renew, or null when it holds the lease it names. */
    private Outcome refusal(UUID id, UUID user, Long generation) {
      ModelToken token = tokens.get(id);
      if (token == null) {
        return Outcome.refused(ErrorCode.NOT_FOUND, "Token not found");
      }
      ModelLease lease = token.lease;
      if (lease != null && lease.user().equals(user) && (generation == null || generation == lease.generation())) {
        return null;
      }
      ModelUsage evicted = token.evictionNotice();
      if (evicted != null && evicted.user().equals(user) && (generation == null || generation == evicted.generation())) {
        return Outcome.refused(ErrorCode.CONFLICT, "Token was evicted.");
      }
      if (lease == null) {
        return Outcome.refused(ErrorCode.CONFLICT, "Token is not active.");
      }
      if (!lease.user().equals(user)) {
        return Outcome.refused(ErrorCode.CONFLICT, "Token is held by another user.");
      }
      return Outcome.refused(ErrorCode.CONFLICT,
          "Stale generation " + generation + ": the token has been leased again since.");
    }

    Outcome get(UUID id, long nowNanos) {
      expireDue(nowNanos);
      ModelToken token = tokens.get(id);
      return token == null ? Outcome.refused(ErrorCode.NOT_FOUND, "Token not found") : Outcome.ok(token.view());
    }

    Outcome list(TokenState state, long nowNanos) {
      expireDue(nowNanos);
      List<TokenView> views = new ArrayList<>();
      for (ModelToken token : tokens.values()) {
        TokenView view = token.view();
        if (state == null || view.state() == state) {
          views.add(view);
        }
      }
      return Outcome.ok(views);
    }

    Outcome clear(long nowMillis, long nowNanos) {
      expireDue(nowNanos);
      List<ModelToken> active = leases();
      active.sort(Comparator.comparingLong(t -> t.lease.touched()));
      active.forEach(token -> end(token, EndReason.CLEARED, nowMillis));
      return Outcome.ok(active.size());
    }

    /** Ends every lease whose deadline has come, earliest deadline first, each at its expiry instant. */
    void expireDue(long nowNanos) {
      List<ModelToken> due = leases();
      due.removeIf(t -> nowNanos - t.lease.deadline() < 0);
      due.sort(Comparator.<ModelToken>comparingLong(t -> t.lease.deadline()).thenComparingLong(t -> t.lease.touched()));
      due.forEach(token -> end(token, EndReason.EXPIRED, token.lease.expiresAt()));
    }

    /** Tokens with a lease, in creation order; some may be past their deadline until the next operation. */
    List<ModelToken> leases() {
      return new ArrayList<>(tokens.values().stream().filter(t -> t.lease != null).toList());
    }

    /** The lease on one of the pool's tokens, or null when it is free. */
    ModelLease lease(UUID id) {
      return tokens.get(id).lease;
    }

    long usageTotal() {
      return tokens.values().stream().mapToLong(t -> t.usage).sum();
    }

    List<PoolChange> drainChanges() {
      List<PoolChange> out = List.copyOf(changes);
      changes.clear();
      return out;
    }

    private void end(ModelToken token, EndReason reason, long endedAt) {
      ModelLease lease = token.lease;
      token.lease = null;
      token.releasedAt = endedAt;
      token.freed = ++clock;
      token.usages.set(token.usages.size() - 1, new ModelUsage(lease.user(), lease.generation(), reason));
      changes.add(change(PoolChange.Kind.ENDED, token, lease, endedAt, reason));
    }

    private static PoolChange change(PoolChange.Kind kind, ModelToken token, ModelLease lease, long endedAt,
        EndReason reason) {
      ModelUsage notice = token.evictionNotice();
      return new PoolChange(kind, lease.generation(), token.id, lease.user(), lease.startedAt(), lease.expiresAt(),
          endedAt, reason, token.activatedAt, token.releasedAt, token.usage, notice == null ? null : notice.user(),
          notice == null ? 0 : notice.generation(), lease.key(), lease.evictedGeneration());
    }
  }

  static final class ModelToken {
    final UUID id;
    ModelLease lease;
    long activatedAt = PoolChange.NO_TIME;
    long releasedAt = PoolChange.NO_TIME;
    long usage;
    /** When it last became free, on the model's event clock. */
    long freed;
    /** Every lease it was granted, oldest first, with how it ended (null while open). */
    final List<ModelUsage> usages = new ArrayList<>();

    ModelToken(UUID id, long freed) {
      this.id = id;
      this.freed = freed;
    }

    ModelToken copy() {
      ModelToken copy = new ModelToken(id, freed);
      copy.lease = lease;
      copy.activatedAt = activatedAt;
      copy.releasedAt = releasedAt;
      copy.usage = usage;
      copy.usages.addAll(usages);
      return copy;
    }

    /** Its last evicted lease, unless that lease's holder was granted the token again since. */
    ModelUsage evictionNotice() {
      for (int i = usages.size() - 1; i >= 0; i--) {
        if (usages.get(i).reason() == EndReason.EVICTED) {
          UUID holder = usages.get(i).user();
          return usages.subList(i + 1, usages.size()).stream().anyMatch(u -> u.user().equals(holder))
              ? null : usages.get(i);
        }
      }
      return null;
    }

    TokenView view() {
      return new TokenView(id, lease == null ? TokenState.AVAILABLE : TokenState.ACTIVE,
          lease == null ? null : lease.user(), instant(activatedAt), instant(releasedAt), usage,
          lease == null ? 0 : lease.generation(), lease == null ? null : Instant.ofEpochMilli(lease.expiresAt()));
    }
  }

  /**
   * @param touched when granted or last renewed, on the model's event clock
   * @param key the Idempotency-Key it was granted under, or null
   * @param evictedGeneration the lease its grant evicted, 0 for none
   */
  record ModelLease(UUID user, long generation, long startedAt, long startedNanos, long expiresAt, long deadline,
      long touched, String key, long evictedGeneration) {}

  /** A grant under an Idempotency-Key, with the eviction its answer named. */
  record KeyedGrant(String key, UUID user, UUID tokenId, long generation, long grantedNanos, Grant.Evicted evicted) {}

  /** One lease of a token, as its history keeps it: how it ended, or null while it is open. */
  record ModelUsage(UUID user, long generation, EndReason reason) {}

  private static Instant instant(long millis) {
    return millis == PoolChange.NO_TIME ? null : Instant.ofEpochMilli(millis);
  }

  /**
   * The changes the pool reported, replayed without the model: one holder per token, every lease
   * ended once and never after its deadline, usage counts that add up. (Generations, which outlive
   * undo, are checked by the run.)
   */
  static final class ChangeLog {
    /** Open leases by token, as the change stream tells them. */
    final Map<UUID, Open> held = new HashMap<>();
    final Map<UUID, Long> grantsPerToken = new HashMap<>();
    final Set<Long> ended = new HashSet<>();
    long grants;

    record Open(long generation, long expiresAtMillis, long deadlineNanos) {}

    /** A deep copy, for an undo mark: undone changes leave the log with the steps that made them. */
    ChangeLog copy() {
      ChangeLog copy = new ChangeLog();
      copy.held.putAll(held);
      copy.grantsPerToken.putAll(grantsPerToken);
      copy.ended.addAll(ended);
      copy.grants = grants;
      return copy;
    }

    void record(List<PoolChange> changes, long nowNanos) {
      long ttlNanos = TTL.toNanos();
      for (PoolChange change : changes) {
        UUID token = change.tokenId();
        Open open = held.get(token);
        switch (change.kind()) {
          case GRANTED -> {
            assertThat(open).as("holder of %s when granted again", label(token)).isNull();
            grants++;
            long count = grantsPerToken.merge(token, 1L, Long::sum);
            assertThat(change.tokenUsageCount()).as("usage count of %s", label(token)).isEqualTo(count);
            held.put(token, new Open(change.generation(), change.expiresAtMillis(), nowNanos + ttlNanos));
          }
          case RENEWED -> {
            assertThat(open).as("lease renewed on %s", label(token)).isNotNull();
            assertThat(change.generation()).isEqualTo(open.generation());
            held.put(token, new Open(open.generation(), change.expiresAtMillis(), nowNanos + ttlNanos));
          }
          case ENDED -> {
            assertThat(ended.add(change.generation())).as("first end of generation %d", change.generation()).isTrue();
            assertThat(open).as("lease ended on %s", label(token)).isNotNull();
            assertThat(change.generation()).isEqualTo(open.generation());
            if (change.endReason() == EndReason.EXPIRED) {
              assertThat(change.endedAtMillis()).as("end of an expired lease").isEqualTo(open.expiresAtMillis());
              assertThat(nowNanos - open.deadlineNanos()).as("expired no earlier than its deadline").isNotNegative();
            } else {
              assertThat(nowNanos - open.deadlineNanos()).as("%s before its deadline", change.endReason()).isNegative();
            }
            held.remove(token);
          }
        }
      }
    }

    /** An expired lease never shows as active, and a token's use count is its number of grants. */
    void checkView(TokenView view, long nowNanos) {
      assertThat(view.usageCount()).as("usage count of %s", label(view.tokenId()))
          .isEqualTo(grantsPerToken.getOrDefault(view.tokenId(), 0L));
      Open open = held.get(view.tokenId());
      if (view.state() == TokenState.ACTIVE) {
        assertThat(open).as("open lease of active %s", label(view.tokenId())).isNotNull();
        assertThat(view.generation()).isEqualTo(open.generation());
        assertThat(nowNanos - open.deadlineNanos()).as("active %s before its deadline", label(view.tokenId()))
            .isNegative();
      }
    }
  }
}
