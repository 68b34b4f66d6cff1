package dev.tokenlease.platform;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.metrics.Metrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;

/**
 * Builds the Vert.x instance: a plain one, or with {@code TOKENS_CLUSTER=true} one whose event bus
 * spans the nodes of a Hazelcast cluster (TCP join with the configured members; no multicast), so
 * that verticles elsewhere can use the {@code tokens.api.*} addresses and follow
 * {@code tokens.events}, and nodes forward pool operations to the pool's owner (see
 * {@code lease.cluster.ClusterNode}).
 */
public final class ClusterSupport {
  static final String CLUSTER_NAME = "token-service";

  private ClusterSupport() {}

  /** A Vert.x instance, clustered if configured, that reports into {@code metrics}. */
  public static Future<Vertx> vertx(AppConfig.ClusterConfig cluster, Metrics metrics) {
    VertxOptions options = new VertxOptions().setMetricsOptions(metrics.vertxOptions());
    if (!cluster.enabled()) {
      return Future.succeededFuture(Vertx.builder().with(options).withMetrics(metrics.vertxFactory()).build());
    }
    checkPortFree(cluster);
    options.getEventBusOptions().setHost(cluster.host()).setPort(0);
    return Vertx.builder()
        .with(options)
        .withMetrics(metrics.vertxFactory())
        .withClusterManager(new HazelcastClusterManager(hazelcast(cluster)))
        .buildClustered();
  }

  /** A cluster port that another process holds stops start-up with one line, before Hazelcast tries. */
  private static void checkPortFree(AppConfig.ClusterConfig cluster) {
    try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
      probe.setReuseAddress(true);
      probe.bind(new java.net.InetSocketAddress(cluster.host(), cluster.port()));
    } catch (java.io.IOException e) {
      throw new dev.tokenlease.platform.config.ConfigException(AppConfig.CLUSTER_PORT + ": " + cluster.nodeId()
          + " cannot be used (" + e.getMessage() + "); each node needs its own free cluster port");
    }
  }

  /** Vert.x's default Hazelcast settings (the maps it needs), with our network and join. */
  static Config hazelcast(AppConfig.ClusterConfig cluster) {
    Config config = ConfigUtil.loadConfig();
    config.setClusterName(CLUSTER_NAME);
    config.setProperty("hazelcast.logging.type", "slf4j");
    config.setProperty("hazelcast.phone.home.enabled", "false");
    // On SIGTERM the service hands its pools over before it leaves the cluster (Vert.x closes
    // Hazelcast last); Hazelcast's own hook would leave at once and drop messages in flight.
    config.setProperty("hazelcast.shutdownhook.enabled", "false");
    // Failure detection in seconds, not Hazelcast's default minute: a member silent for 2 s is
    // removed (and its event-bus registrations with it); a member cut off and back (a paused
    // process, a healed partition) merges back within seconds.
    config.setProperty("hazelcast.heartbeat.interval.seconds", "1");
    config.setProperty("hazelcast.max.no.heartbeat.seconds", "2");
    config.setProperty("hazelcast.merge.first.run.delay.seconds", "5");
    config.setProperty("hazelcast.merge.next.run.delay.seconds", "5");
    // The port is used as given: the node's id is host:port, and the members list names it.
    config.getNetworkConfig().setPort(cluster.port()).setPortAutoIncrement(false);
    config.getNetworkConfig().getInterfaces().setEnabled(true).addInterface(cluster.host());
    JoinConfig join = config.getNetworkConfig().getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getTcpIpConfig().setEnabled(true).addMember(cluster.host() + ":" + cluster.port());
    cluster.members().forEach(member -> join.getTcpIpConfig().addMember(member));
    return config;
  }
}
