package dev.tokenlease.support;

import dev.tokenlease.support.LeaseLoad.Kind;
import dev.tokenlease.support.LeaseLoad.Outcome;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Judges a fault run from the two sides that matter: what the clients were told, and what the
 * database holds once the service has recovered (or restarted).
 */
public final class CampaignCheck {
  /** A usage row. */
  private record Usage(long generation, String tokenId, String userId, long startedMillis, long expiresMillis,
      Long endedMillis, String endReason) {}

  /**
   * What was found.
   *
   * @param refusedButApplied error answers whose change is in the database anyway
   * @param acknowledgedLost 200 answers whose change the database does not hold
   * @param lostWindowMillis how far apart the first and last lost acknowledgments were (0 if none)
   * @param twoHolders grants of a token to someone while an acknowledged lease on it (possibly lost)
   *     was still running
   * @param generationRepeats generations given to two different grants
   * @param overlaps consecutive usages of one token in the database whose intervals overlap
   */
  public record Findings(int acknowledged, int refused, int unknown, int refusedButApplied, int acknowledgedLost,
      long lostWindowMillis, int twoHolders, int generationRepeats, int overlaps, List<String> examples) {
    @Override
    public String toString() {
      return "acknowledged=" + acknowledged + " refused=" + refused + " unknown=" + unknown
          + " refusedButApplied=" + refusedButApplied + " acknowledgedLost=" + acknowledgedLost
          + " lostWindowMs=" + lostWindowMillis + " twoHolders=" + twoHolders + " generationRepeats=" + generationRepeats
          + " overlaps=" + overlaps + (examples.isEmpty() ? "" : " e.g. " + examples);
    }
  }

  private CampaignCheck() {}

  /**
   * @param leaseTtlMillis the lease TTL the service ran with
   * @param restartedAtMillis when a restarted service began (grants from then on are checked against
   *     leases acknowledged before and lost), or 0 if the service was not restarted
   */
  public static Findings judge(String databaseUrl, List<Outcome> outcomes, long leaseTtlMillis, long restartedAtMillis)
      throws Exception {
    Map<Long, Usage> usages = load(databaseUrl);
    Map<String, List<Usage>> byUser = usages.values().stream().collect(Collectors.groupingBy(Usage::userId));
    List<String> examples = new ArrayList<>();
    int refusedButApplied = 0;
    int lost = 0;
    int repeats = 0;
    int twoHolders = 0;
    long firstLost = Long.MAX_VALUE;
    long lastLost = Long.MIN_VALUE;
    Map<Long, Long> ackedExpiry = new HashMap<>();
    Set<Long> grantedGenerations = new HashSet<>();
    List<Outcome> lostGrants = new ArrayList<>();

    for (Outcome o : outcomes) {
      if (o.kind() == Kind.ACTIVATE && o.acknowledged()) {
        if (!grantedGenerations.add(o.generation())) {
          repeats++;
          note(examples, "generation " + o.generation() + " acknowledged twice");
        }
        ackedExpiry.merge(o.generation(), expiresMillis(o), Math::max);
      } else if (o.kind() == Kind.RENEW && o.acknowledged()) {
        ackedExpiry.merge(o.generation(), expiresMillis(o), Math::max);
      }
    }
    for (Outcome o : outcomes) {
      Usage row = o.generation() == 0 ? null : usages.get(o.generation());
      switch (o.kind()) {
        case ACTIVATE -> {
          if (o.refused() && byUser.containsKey(o.userId())) {
            refusedButApplied++;
            note(examples, "refused activation of " + o.userId() + " is stored");
          }
          if (o.acknowledged()) {
            if (row == null) {
              lost++;
              lostGrants.add(o);
              firstLost = Math.min(firstLost, o.receivedMillis());
              lastLost = Math.max(lastLost, o.receivedMillis());
            } else if (!row.userId().equals(o.userId()) || !row.tokenId().equals(o.tokenId())) {
              repeats++;
              note(examples, "generation " + o.generation() + " acknowledged to " + o.userId() + " is stored for " + row.userId());
            }
          }
        }
        case RELEASE -> {
          if (o.refused() && row != null && "released".equals(row.endReason())) {
            refusedButApplied++;
            note(examples, "refused release of generation " + o.generation() + " is stored");
          }
          if (o.acknowledged() && (row == null || !"released".equals(row.endReason()))) {
            lost++;
            firstLost = Math.min(firstLost, o.receivedMillis());
            lastLost = Math.max(lastLost, o.receivedMillis());
          }
        }
        case RENEW -> {
          // The answer shows whole seconds; a renewal that was refused would leave a later expiry.
          Long acked = ackedExpiry.get(o.generation());
          if (o.refused() && row != null && acked != null && row.expiresMillis() >= acked + 1_000) {
            refusedButApplied++;
            note(examples, "refused renewal of generation " + o.generation() + " is stored");
          }
          if (o.acknowledged() && (row == null || row.expiresMillis() < expiresMillis(o))) {
            lost++;
            firstLost = Math.min(firstLost, o.receivedMillis());
            lastLost = Math.max(lastLost, o.receivedMillis());
          }
        }
      }
    }
    // A grant whose acknowledgment was lost still binds: no later run may hand its token out before
    // it could have ended (sent + TTL is the earliest that end can be).
    if (restartedAtMillis > 0) {
      for (Outcome grant : lostGrants) {
        for (Usage later : usages.values()) {
          if (later.tokenId().equals(grant.tokenId()) && later.startedMillis() >= restartedAtMillis
              && later.startedMillis() < grant.sentMillis() + leaseTtlMillis) {
            twoHolders++;
            note(examples, "token " + grant.tokenId() + " granted again " + (grant.sentMillis() + leaseTtlMillis
                - later.startedMillis()) + " ms before lost generation " + grant.generation() + " could end");
          }
        }
      }
    }
    int overlaps = overlaps(usages.values(), examples);
    int acknowledged = (int) outcomes.stream().filter(Outcome::acknowledged).count();
    int refused = (int) outcomes.stream().filter(Outcome::refused).count();
    int unknown = (int) outcomes.stream().filter(o -> o.status() == -1).count();
    return new Findings(acknowledged, refused, unknown, refusedButApplied, lost,
        lost == 0 ? 0 : lastLost - firstLost, twoHolders, repeats, overlaps, examples);
  }

  private static long expiresMillis(Outcome o) {
    String expires = o.body().getString("expires_at");
    return expires == null ? 0 : java.time.Instant.parse(expires).toEpochMilli();
  }

  private static int overlaps(java.util.Collection<Usage> usages, List<String> examples) {
    Map<String, List<Usage>> byToken = usages.stream().collect(Collectors.groupingBy(Usage::tokenId));
    int overlaps = 0;
    for (List<Usage> history : byToken.values()) {
      history.sort(java.util.Comparator.comparingLong(Usage::generation));
      for (int i = 1; i < history.size(); i++) {
        Usage previous = history.get(i - 1);
        Usage next = history.get(i);
        if (previous.endedMillis() == null || previous.endedMillis() > next.startedMillis()) {
          overlaps++;
          note(examples, "overlapping usages in the database: " + previous + " then " + next);
        }
      }
    }
    return overlaps;
  }

  private static Map<Long, Usage> load(String databaseUrl) throws Exception {
    Map<Long, Usage> usages = new HashMap<>();
    try (Connection conn = TestDatabase.connect(databaseUrl); Statement st = conn.createStatement();
        ResultSet rows = st.executeQuery("""
            SELECT generation, token_id, user_id,
                   (extract(epoch FROM started_at) * 1000)::bigint AS started,
                   (extract(epoch FROM expires_at) * 1000)::bigint AS expires,
                   (extract(epoch FROM ended_at) * 1000)::bigint AS ended, end_reason
              FROM usages""")) {
      while (rows.next()) {
        long ended = rows.getLong("ended");
        usages.put(rows.getLong("generation"), new Usage(rows.getLong("generation"), rows.getString("token_id"),
            rows.getString("user_id"), rows.getLong("started"), rows.getLong("expires"),
            rows.wasNull() ? null : ended, rows.getString("end_reason")));
      }
    }
    return usages;
  }

  private static void note(List<String> examples, String example) {
    if (examples.size() < 5) {
      examples.add(example);
    }
  }
}
