package dev.tokenlease.lease.bus;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.LocalBus;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageCodec;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputFilter;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Pool operations across a cluster: every node serves the whole API, and a node that does not own
 * the pools sends each operation, as the same record its routes would pass locally, to the owner
 * over the clustered event bus (at the owner's {@link #nodeAddress}, which each node registers when
 * it starts; the owner is the one this node last read from PostgreSQL), and answers its caller with
 * the owner's answer. While no node owns the pools (a
 * takeover under way) the request is held and tried again, up to {@code TOKENS_CLUSTER_FORWARD_TIMEOUT};
 * then, or when the owner does not answer in that time, the caller gets 503 {@code unavailable}:
 * never a success the owner did not acknowledge.
 *
 * <p>Records cross the wire in Java serialization, read back through a filter that admits only the
 * service's own message types and the JDK value types they hold. Nodes of one cluster trust each
 * other (as for the {@code tokens.api.*} addresses).
 */
public final class PoolForwarding {
  /** Each node answers forwarded operations at this prefix and its id ({@link #nodeAddress}). */
  private static final String ADDRESS = "tokens.cluster.forward";
  static final String CODEC = "tokens.cluster.java";
  private static final DeliveryOptions LOCAL = new DeliveryOptions().setLocalOnly(true);
  /** Committed batches from the owner to every node, for their live streams ({@code /api/events}). */
  static final String COMMITTED = "tokens.cluster.committed";
  static final DeliveryOptions TO_NODES = new DeliveryOptions().setCodecName(CODEC);
  /**
   * The refusal of an owner that is handing the pools over (a planned stop): nothing was changed, and
   * the operation is sent again until the next owner takes it.
   */
  static final String HANDING_OVER = "handing_over";
  /** The refusal of a node that does not own the pools (the sender's view is behind): sent again. */
  static final String NOT_OWNER = "not_owner";
  private static final long RETRY_MILLIS = 100;
  private static final Map<Vertx, PoolForwarding> BY_VERTX = new ConcurrentHashMap<>();
  /** The operations that change the pools: when one may have been delivered but got no answer, its outcome is unknown. */
  private static final java.util.Set<String> CHANGES = java.util.Set.of(PoolAddresses.ACTIVATE, PoolAddresses.RELEASE,
      PoolAddresses.RENEW, PoolAddresses.REVOKE, PoolAddresses.CLEAR, PoolAddresses.CREATE_POOL,
      PoolAddresses.UPDATE_POOL, PoolAddresses.DELETE_POOL);

  /** Committed batches from the owner to the other nodes, in commit order. */
  record Committed(java.util.List<CommittedChanges> batches) implements Serializable {}

  /** An operation for the owner: the local address it is served at, and its request record. */
  record Forward(String address, Object request) implements Serializable {}

  /** The owner's answer: the value, or its refusal as raised. */
  record Outcome(Object value, ApiException refusal) implements Serializable {}

  private final Vertx vertx;
  private final Duration timeout;
  /** Whether this node's own pool verticle owns the pools now; read by every HTTP verticle. */
  private volatile boolean local;
  private volatile java.util.function.Supplier<ClusterNode.View> viewSource = () -> null;

  private PoolForwarding(Vertx vertx, Duration timeout) {
    this.vertx = vertx;
    this.timeout = timeout;
  }

  /** Turns forwarding on for this (clustered) Vert.x instance; its pool clients use it from then on. */
  public static PoolForwarding enable(Vertx vertx, Duration timeout) {
    vertx.eventBus().registerCodec(new JavaCodec());
    PoolForwarding forwarding = new PoolForwarding(vertx, timeout);
    BY_VERTX.put(vertx, forwarding);
    return forwarding;
  }

  public static void disable(Vertx vertx) {
    BY_VERTX.remove(vertx);
  }

  /** The forwarding of this Vert.x instance, or null when it is not a cluster's node. */
  static PoolForwarding of(Vertx vertx) {
    return BY_VERTX.get(vertx);
  }

  /** Where node {@code node} answers forwarded operations (registered once, when the node starts). */
  static String nodeAddress(String node) {
    return ADDRESS + "." + node;
  }

  void viewSource(java.util.function.Supplier<ClusterNode.View> source) {
    viewSource = source;
  }

  /** What this node knows of the pools' ownership. */
  ClusterNode.View view() {
    return viewSource.get();
  }

  /** Whether this node's own pool verticle owns the pools now (set by the node's supervisor). */
  public void local(boolean owns) {
    local = owns;
  }

  /** One operation on its way to an owner, until it is answered or its deadline passes. */
  private final class Call {
    final String address;
    final Object request;
    final long deadline;
    final Promise<Object> result = Promise.promise();
    /** Whether a send is out that may have reached an owner (false while every send so far certainly did not). */
    boolean maybeDelivered;

    Call(String address, Object request, long deadline) {
      this.address = address;
      this.request = request;
      this.deadline = deadline;
    }

    long leftMillis() {
      return TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    }

    /**
     * No answer by the deadline. A change that may have reached the owner has an unknown outcome (the
     * HTTP connection is closed without an answer, as when a commit's outcome is unknown); anything else
     * certainly changed nothing, and is refused.
     */
    void expire() {
      if (maybeDelivered && CHANGES.contains(address)) {
        result.tryFail(new ApiException(ErrorCode.OUTCOME_UNKNOWN, "The pools' owner did not answer in time; "
            + "whether the change was made is not known."));
      } else {
        result.tryFail(new ApiException(ErrorCode.UNAVAILABLE, maybeDelivered
            ? "The pools' owner did not answer in time (another node takes over within seconds); try again."
            : "No node owns the pools now (a takeover is under way); try again shortly.", 1));
      }
    }
  }

  /**
   * The operation's answer: from this node's pool verticle while it owns the pools, else from the
   * owner's. A pool that stepped down meanwhile is not there to answer, and the call goes to the owner.
   */
  @SuppressWarnings("unchecked")
  <R> Future<R> call(String address, Object request, long extraNanos) {
    Call call = new Call(address, request, System.nanoTime() + timeout.toNanos() + extraNanos);
    // The caller is answered by the deadline whatever becomes of the messages: a send to a node that
    // died may be lost without its reply timeout ever firing.
    long guard = vertx.setTimer(Math.max(1, call.leftMillis() + 50), id -> call.expire());
    call.result.future().onComplete(done -> vertx.cancelTimer(guard));
    if (local) {
      // The owner's own calls complete directly, as in a single instance (no reply message); should
      // the pool step down with the call in flight, the guard above answers it.
      call.maybeDelivered = true;
      Promise<Object> direct = Promise.promise();
      direct.future().onComplete(done -> {
        if (done.succeeded()) {
          call.result.tryComplete(done.result());
        } else {
          call.result.tryFail(done.cause());
        }
      });
      vertx.eventBus().send(address, new PoolMessages.LocalCall(request, direct, vertx.getOrCreateContext()), LOCAL);
    } else {
      forward(call);
    }
    return (Future<R>) call.result.future();
  }

  private void forward(Call call) {
    long left = call.leftMillis();
    if (left <= 0) {
      call.expire();
      return;
    }
    ClusterNode.View view = view();
    if (view == null || !view.ownerLive() || view.owner() == null) {
      // No live owner known (a takeover under way): hold the request and look again.
      vertx.setTimer(RETRY_MILLIS, id -> forward(call));
      return;
    }
    call.maybeDelivered = true;
    vertx.eventBus().<Object>request(nodeAddress(view.owner()), new Forward(call.address, call.request),
        new DeliveryOptions().setCodecName(CODEC).setSendTimeout(left)).onComplete(done -> {
          if (done.succeeded()) {
            Outcome outcome = (Outcome) done.result().body();
            if (outcome.refusal() != null && (HANDING_OVER.equals(outcome.refusal().code())
                || NOT_OWNER.equals(outcome.refusal().code()))) {
              // Refused by a node handing over, or no longer (or not yet) the owner: nothing changed. Sent
              // again, to the owner this node knows of then.
              call.maybeDelivered = false;
              vertx.setTimer(RETRY_MILLIS, id -> forward(call));
            } else if (outcome.refusal() != null) {
              call.result.tryFail(outcome.refusal());
            } else {
              call.result.tryComplete(outcome.value());
            }
          } else if (done.cause() instanceof ReplyException e && e.failureType() == ReplyFailure.NO_HANDLERS) {
            // Certainly not delivered: no owner is registered yet. Hold the request and try again.
            call.maybeDelivered = false;
            vertx.setTimer(RETRY_MILLIS, id -> forward(call));
          } else if (done.cause() instanceof ReplyException e && e.failureType() == ReplyFailure.TIMEOUT) {
            call.expire();
          } else {
            call.result.tryFail(done.cause());
          }
        });
  }

  /**
   * On every node, registered once at its start (so that a takeover needs no new registration in the
   * cluster): answers forwarded operations from its own pool verticle while {@code owns} is true,
   * else refuses them as {@link #NOT_OWNER}, and the sender sends them again to the owner it knows of.
   */
  static MessageConsumer<Object> serveNode(Vertx vertx, String node, java.util.function.BooleanSupplier owns,
      Duration timeout) {
    EventBus bus = vertx.eventBus();
    return bus.consumer(nodeAddress(node), msg -> {
      if (!(msg.body() instanceof Forward forward) || !forward.address().startsWith("tokens.pool.")) {
        msg.fail(ErrorCode.BAD_REQUEST.code(), "Not a forwarded pool operation.");
        return;
      }
      DeliveryOptions reply = new DeliveryOptions().setCodecName(CODEC);
      if (!owns.getAsBoolean()) {
        msg.reply(new Outcome(null, new ApiException(ErrorCode.UNAVAILABLE, "This node does not own the pools.", 1)
            .named(NOT_OWNER, null)), reply);
        return;
      }
      LocalBus.request(bus, forward.address(), forward.request(), new DeliveryOptions().setLocalOnly(true)
          .setSendTimeout(timeout.toMillis() + Duration.ofSeconds(30).toMillis()))
          .onComplete(done -> {
            if (done.succeeded()) {
              msg.reply(new Outcome(done.result(), null), reply);
            } else if (done.cause() instanceof ApiException refusal) {
              msg.reply(new Outcome(null, refusal), reply);
            } else if (done.cause() instanceof ReplyException e && e.failureType() == ReplyFailure.TIMEOUT
                && CHANGES.contains(forward.address())) {
              // No answer: the sender's own deadline tells its caller that the outcome is unknown.
            } else {
              msg.reply(new Outcome(null, new ApiException(ErrorCode.INTERNAL, done.cause().getMessage())), reply);
            }
          });
    });
  }

  /** Java serialization on the wire, read back through an allow-list; by reference locally. */
  static final class JavaCodec implements MessageCodec<Object, Object> {
    private static final ObjectInputFilter ALLOWED = ObjectInputFilter.Config.createFilter(
        "maxdepth=20;maxrefs=100000;maxbytes=16777216;"
            + "dev.tokenlease.lease.**;dev.tokenlease.platform.ApiException;dev.tokenlease.platform.ErrorCode;"
            + "java.lang.*;java.time.*;java.util.*;java.util.concurrent.*;[Ljava.lang.*;"
            + "java.lang.Enum;java.lang.Number;java.lang.Throwable;java.lang.RuntimeException;"
            + "java.lang.Exception;java.lang.StackTraceElement;[Ljava.lang.StackTraceElement;!*");

    @Override
    public void encodeToWire(Buffer buffer, Object message) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
        out.writeObject(message);
      } catch (IOException e) {
        throw new IllegalStateException("Cannot send " + message.getClass().getName() + " across the cluster", e);
      }
      buffer.appendInt(bytes.size()).appendBytes(bytes.toByteArray());
    }

    @Override
    public Object decodeFromWire(int pos, Buffer buffer) {
      int length = buffer.getInt(pos);
      byte[] bytes = buffer.getBytes(pos + 4, pos + 4 + length);
      try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes))) {
        in.setObjectInputFilter(ALLOWED);
        return in.readObject();
      } catch (IOException | ClassNotFoundException e) {
        throw new IllegalStateException("Cannot read a forwarded pool message", e);
      }
    }

    @Override
    public Object transform(Object message) {
      return message;
    }

    @Override
    public String name() {
      return CODEC;
    }

    @Override
    public byte systemCodecID() {
      return -1;
    }
  }
}
