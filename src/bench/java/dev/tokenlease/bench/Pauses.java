package dev.tokenlease.bench;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The stop-the-world pauses a JVM logged with {@code -Xlog:safepoint:file=...}: every safepoint
 * (collections and the rest) with its total time, read from a point in the log on, so that a
 * scenario reports the pauses seen while it ran.
 */
final class Pauses {
  /** Pauses in a window: how many, their sum and the longest, in milliseconds, and how many took over 1 ms. */
  record Seen(int count, double totalMillis, double maxMillis, int overOneMilli) {
    static final Seen NONE = new Seen(0, 0, 0, 0);

    @Override
    public String toString() {
      return String.format(java.util.Locale.ROOT, "%d pauses (%d over 1 ms), %.1f ms in all, longest %.1f ms", count,
          overOneMilli, totalMillis, maxMillis);
    }
  }

  private static final Pattern TOTAL = Pattern.compile("Total: (\\d+) ns");

  private final Path log;

  Pauses(Path log) {
    this.log = log;
  }

  /** The JVM option that writes this log. */
  String option() {
    return "-Xlog:safepoint:file=" + log;
  }

  /** Where the log ends now: pass it to {@link #since(long)} later. */
  long mark() {
    try {
      return Files.exists(log) ? Files.size(log) : 0;
    } catch (IOException e) {
      return 0;
    }
  }

  /** The pauses logged after {@code mark}. */
  Seen since(long mark) {
    if (!Files.exists(log)) {
      return Seen.NONE;
    }
    try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
      long length = file.length();
      if (length <= mark) {
        return Seen.NONE;
      }
      byte[] bytes = new byte[(int) (length - mark)];
      file.seek(mark);
      file.readFully(bytes);
      int count = 0;
      int over = 0;
      double total = 0;
      double max = 0;
      for (String line : new String(bytes, StandardCharsets.UTF_8).split("\n")) {
        Matcher m = TOTAL.matcher(line);
        if (m.find()) {
          double millis = Long.parseLong(m.group(1)) / 1e6;
          count++;
          total += millis;
          max = Math.max(max, millis);
          if (millis > 1) {
            over++;
          }
        }
      }
      return new Seen(count, total, max, over);
    } catch (IOException e) {
      return Seen.NONE;
    }
  }
}
