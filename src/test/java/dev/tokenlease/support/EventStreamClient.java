package dev.tokenlease.support;

import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Reads a server-sent-events stream as it arrives, frame by frame (a frame is what comes before a
 * blank line: an event, a comment, an id alone), on a thread of its own; the test takes frames from
 * a queue, waiting for each at most as long as it says.
 */
public final class EventStreamClient implements AutoCloseable {
  /** One frame; {@code data} is null for frames that carry no event (comments, an id alone). */
  public record Frame(String id, String event, String data, List<String> comments) {
    public boolean isEvent() {
      return data != null;
    }

    public long idNumber() {
      return Long.parseLong(id);
    }

    public JsonObject json() {
      return new JsonObject(data);
    }
  }

  private static final Frame END = new Frame(null, null, null, List.of());

  private final HttpResponse<InputStream> response;
  private final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();
  private final Thread reader;

  private EventStreamClient(HttpResponse<InputStream> response) {
    this.response = response;
    this.reader = new Thread(this::read, "event-stream-reader");
    reader.setDaemon(true);
    reader.start();
  }

  /** Opens {@code path} (with the given headers: name, value, ...) and returns once the answer's head is in. */
  public static EventStreamClient open(int port, String path, String... headers) {
    HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).GET();
    for (int i = 0; i < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    try {
      return new EventStreamClient(client.send(request.build(), HttpResponse.BodyHandlers.ofInputStream()));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  public int status() {
    return response.statusCode();
  }

  public java.net.http.HttpHeaders headers() {
    return response.headers();
  }

  /** The first value of a header, or null. */
  public String header(String name) {
    return response.headers().firstValue(name).orElse(null);
  }

  /** The next frame, whatever it is; fails if none comes within {@code timeout} or the stream ended. */
  public Frame next(Duration timeout) {
    Frame frame;
    try {
      frame = frames.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    if (frame == null) {
      throw new AssertionError("no frame within " + timeout);
    }
    if (frame == END) {
      frames.add(END);
      throw new AssertionError("the stream ended");
    }
    return frame;
  }

  /** The next frame that is an event, skipping comments and id-only frames. */
  public Frame nextEvent(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Frame frame = next(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
      if (frame.isEvent()) {
        return frame;
      }
    }
  }

  /** The next {@code count} events. */
  public List<Frame> events(int count, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<Frame> events = new ArrayList<>();
    while (events.size() < count) {
      events.add(nextEvent(Duration.ofNanos(Math.max(1, deadline - System.nanoTime()))));
    }
    return events;
  }

  /** Events up to and including the one with id {@code lastId}. */
  public List<Frame> eventsThrough(long lastId, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<Frame> events = new ArrayList<>();
    while (events.isEmpty() || events.get(events.size() - 1).idNumber() < lastId) {
      events.add(nextEvent(Duration.ofNanos(Math.max(1, deadline - System.nanoTime()))));
    }
    return events;
  }

  /** Waits until the server has ended the stream; false if it is still open after {@code timeout}. */
  public boolean endsWithin(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      while (true) {
        Frame frame = frames.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (frame == END) {
          frames.add(END);
          return true;
        }
        if (frame == null) {
          return false;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private void read() {
    try (BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      String id = null;
      String event = null;
      StringBuilder data = null;
      List<String> comments = new ArrayList<>();
      boolean any = false;
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        if (line.isEmpty()) {
          if (any) {
            frames.add(new Frame(id, event, data == null ? null : data.toString(), List.copyOf(comments)));
          }
          id = null;
          event = null;
          data = null;
          comments.clear();
          any = false;
          continue;
        }
        any = true;
        if (line.startsWith(":")) {
          comments.add(line.substring(1).trim());
          continue;
        }
        int colon = line.indexOf(':');
        String field = colon < 0 ? line : line.substring(0, colon);
        String value = colon < 0 ? "" : line.substring(colon + 1);
        if (value.startsWith(" ")) {
          value = value.substring(1);
        }
        switch (field) {
          case "id" -> id = value;
          case "event" -> event = value;
          case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
          default -> comments.add("unknown field " + field);
        }
      }
    } catch (IOException e) {
      // The server closed the connection, or this client did: either way the stream is over.
    } finally {
      frames.add(END);
    }
  }

  @Override
  public void close() {
    try {
      response.body().close();
    } catch (IOException e) {
      // closing anyway
    }
  }
}
